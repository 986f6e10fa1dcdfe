"""A hostile client against real servers: the servers' own logs are masked like ours."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.servers import gunicorn, prepare_db, server_env, uvicorn

pytestmark = pytest.mark.e2e

CARD = "4111111111111111"


@pytest.fixture
def env(tmp_path):
    environment = server_env(tmp_path, LOG_CONSOLE="1")
    prepare_db(environment)
    return environment


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


HOSTILE_REQUESTS = [
    f"{CARD} /api/v1/plans/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    f"GET /api/v1/plans/ HTTP/1.1 {CARD}\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    f"GET /a b {CARD} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    f"GET /api/v1/plans/ HTTP/1.1\r\nHost: {CARD}\r\nConnection: close\r\n\r\n".encode(),
    f"GET /api/v1/plans/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad {CARD}\r\n\r\n".encode(),
]


@pytest.mark.parametrize("start", [gunicorn, uvicorn], ids=["gunicorn", "uvicorn"])
def test_invalid_request_lines_never_reach_any_log_raw(tmp_path, env, start):
    server = start(tmp_path, env=env)
    try:
        for data in HOSTILE_REQUESTS:
            raw_request(server.port, data)
        status, _, _ = server.request("GET", "/api/v1/plans/")
        assert status == 401  # still serving
    finally:
        server.stop()
    output = (Path(env["LOG_BASE_DIR"]).parent / f"server-{server.port}.out").read_text(
        errors="replace"
    )
    files = "".join(p.read_text(errors="replace") for p in Path(env["LOG_BASE_DIR"]).glob("*.log*"))
    assert CARD not in output, output[-2000:]
    assert CARD not in files
    assert "****1111" in output + files  # the attempts were logged, masked
