"""Percent-encoded card numbers against real servers: access lines, `Not Found:`, `path=`.

`?note=4539%2F1445%2F6959%2F7196` is what urlencode makes of a note holding a card, and a
path encoded twice (`/pay/4539%252F1445...`) reaches Django decoded once. runserver's and
uvicorn's access lines print the request line as it came, Django's `Not Found:` line and
our `path=` the path as decoded once: every reading of each must be masked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.servers import BIN, Server, free_port, prepare_db, server_env, uvicorn
from tests.observability.test_redaction import surviving_decoded, without_generated

pytestmark = pytest.mark.e2e

CARD = "4539144569597196"
REQUESTS = [
    "/api/v1/plans/?note=4539%2F1445%2F6959%2F7196",
    "/pay/4539%252F1445%252F6959%252F7196/",
    "/pay/4539%25252F1445%25252F6959%25252F7196/?x=1",
    "/api/v1/plans/?4539%252F1445=%252F6959%252F7196",
    "/pay/4539%E3%85%A41445%E3%85%A46959%E3%85%A47196/",
]


@pytest.fixture
def env(tmp_path):
    environment = server_env(tmp_path, LOG_CONSOLE="1")
    prepare_db(environment)
    return environment


def runserver(tmp: Path, *, env: dict[str, str]) -> Server:
    port = free_port()
    args = [str(BIN / "python"), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    return Server(args, env, port)


def uvicorn_with_access_log(tmp: Path, *, env: dict[str, str]) -> Server:
    return uvicorn(tmp, "--access-log", env=env)


@pytest.mark.parametrize(
    "start", [runserver, uvicorn_with_access_log], ids=["runserver", "uvicorn"]
)
def test_percent_encoded_cards_are_masked_in_every_server_line(tmp_path, env, start):
    server = start(tmp_path, env=env)
    try:
        for path in REQUESTS:
            status, _, _ = server.request("GET", path)
            assert status in (401, 404), path
    finally:
        server.stop()
    output = (Path(env["LOG_BASE_DIR"]).parent / f"server-{server.port}.out").read_text(
        errors="replace"
    )
    files = "".join(p.read_text(errors="replace") for p in Path(env["LOG_BASE_DIR"]).glob("*.log*"))
    for text in (output, files):
        # What the server writes of its own (times, IDs, durations, process IDs, the client's
        # address and port) is not the request's text: its random digits can join into five
        # of the card's (about one run in twenty before they were left out).
        lines = [without_generated(line) for line in text.splitlines()]
        leaks = [line for line in lines if surviving_decoded(CARD, line)]
        assert not leaks, leaks
    assert output.count("****7196") >= len(REQUESTS)  # the access lines were written, masked
    assert "Not Found: /pay/****7196/" in files
