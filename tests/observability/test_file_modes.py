"""Log files are private: created 0640 (backups and lock files too), the directories the
layer creates 0750, whatever the umask; an existing directory is never changed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import configure_logs


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_a_fresh_directory_and_its_files_are_private(tmp_path, umask):
    before = mode(tmp_path)
    target = tmp_path / "var" / "log" / "billing"
    logs = configure_logs(target, max_bytes=2000, backup_count=2)
    for _batch in range(4):  # each batch written on its own: the file rotates between them
        for n in range(20):
            logging.getLogger("billing").info("record %s %s", n, "x" * 80)
        logs.lines("general")
    logging.getLogger("billing.security").warning("a security record")
    logs.lines("general")
    assert mode(tmp_path) == before  # existing: untouched
    for directory in (tmp_path / "var", tmp_path / "var" / "log", target):
        assert mode(directory) == 0o750, directory
    files = sorted(p for p in target.iterdir())
    names = {p.name for p in files}
    assert {"billing_api.log", "billing_api.log.1", "billing_api_security.log"} <= names
    for path in files:  # the files, their backups and their lock files
        assert mode(path) == 0o640, (path.name, oct(mode(path)))


def test_an_existing_directory_is_left_as_it_is(tmp_path, umask):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp is
    logs = configure_logs(shared)
    logging.getLogger("billing").info("hello")
    logs.lines("general")
    assert mode(shared) == 0o1777
    assert mode(shared / "billing_api.log") == 0o640


def test_the_modes_are_settings(tmp_path, settings):
    """Widened for a log shipper's group: LOG_FILE_MODE 0o660 is what the README shows."""
    target = tmp_path / "logs"
    logs = configure_logs(target, observability={"LOG_FILE_MODE": 0o660, "LOG_DIR_MODE": 0o770})
    logging.getLogger("billing").info("hello")
    logs.lines("general")
    assert mode(target) == 0o770 and mode(target / "billing_api.log") == 0o660


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LOG_FILE_MODE", 0o755),
        ("LOG_FILE_MODE", 0o440),
        ("LOG_DIR_MODE", 0o640),
        ("LOG_FILE_MODE", "640"),
    ],
)
def test_a_mode_that_would_break_the_files_is_refused(key, value):
    from observability.conf import validate

    (problem,) = validate({key: value})
    assert problem.startswith(f"OBSERVABILITY[{key!r}] must be a")


def test_an_existing_wider_file_is_narrowed_when_opened(tmp_path):
    """A file an older version left 0644 is given LOG_FILE_MODE when the writer opens it."""
    target = tmp_path / "logs"
    target.mkdir()
    old = target / "billing_api.log"
    old.write_text("an older line\n")
    old.chmod(0o644)
    logs = configure_logs(target)
    logging.getLogger("billing").info("hello")
    assert "hello" in logs.text("general")
    assert mode(old) == 0o640
