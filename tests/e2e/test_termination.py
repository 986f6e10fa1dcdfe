"""SIGTERM writes every record already accepted, however the process runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import (
    BIN,
    ROOT,
    Server,
    free_port,
    gunicorn,
    read_all,
    uvicorn,
)
from tests.e2e.test_servers import check_lifecycle
from tests.polling import wait_for

pytestmark = pytest.mark.e2e


def runserver(tmp: Path, *extra: str, env: dict[str, str]) -> Server:
    port = free_port()
    args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *extra]
    return Server(args, env, port)


def wait_for_group_exit(pgid: int, timeout: float = 30) -> None:
    """Every process of the group has exited (the reloader's child drains after its parent)."""

    def exited() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)
        return False

    wait_for(exited, f"every process of group {pgid} gone after SIGTERM", timeout)


def burst_then_sigterm(server: Server, env: dict[str, str], *, group: bool = False) -> None:
    """20 requests answered, then SIGTERM at once: all 40 lifecycle lines must be on disk."""
    try:
        ids = [server.request("GET", "/api/v1/plans/")[1]["X-Request-ID"] for _ in range(20)]
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    if group:  # the autoreloader's parent and its child, as a terminal's Ctrl-C would
        os.killpg(server.proc.pid, signal.SIGTERM)
        wait_for_group_exit(server.proc.pid)
    server.stop(signal.SIGTERM)
    lines = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_requests.log")
    assert check_lifecycle(lines, ids) == []


def test_runserver_without_reloader(tmp_path, env):
    burst_then_sigterm(runserver(tmp_path, "--noreload", env=env), env)


def test_runserver_with_reloader_sigterm_to_the_group(tmp_path, env):
    burst_then_sigterm(runserver(tmp_path, env=env), env, group=True)


def test_runserver_with_reloader_sigterm_to_the_parent(tmp_path, env):
    """The parent SIGKILLs its serving child when it gets SIGTERM: the child writes in place."""
    server = runserver(tmp_path, env=env)
    ids = [server.request("GET", "/api/v1/plans/")[1]["X-Request-ID"] for _ in range(20)]
    server.proc.send_signal(signal.SIGTERM)
    wait_for_group_exit(server.proc.pid)
    server.stop()
    lines = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_requests.log")
    assert check_lifecycle(lines, ids) == []


def test_uvicorn_single_process(tmp_path, env):
    burst_then_sigterm(uvicorn(tmp_path, env=env), env)


def test_gunicorn_gthread(tmp_path, env):
    burst_then_sigterm(gunicorn(tmp_path, "-k", "gthread", "--threads", "4", env=env), env)


DRAIN_SCRIPT = """
import logging, os, signal
from observability import request_context
log = logging.getLogger("billing")
with request_context(request_id="cmd-run-1"):
    for n in range(100):
        log.info("record %s", n)
os.kill(os.getpid(), signal.SIGTERM)
"""


def test_management_command_killed_by_sigterm_keeps_its_records(tmp_path, env):
    """The listener sleeps up to 50 ms between batches: without the drain these were lost."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", DRAIN_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGTERM  # the signal still ends the process
    lines = read_all(Path(env["LOG_BASE_DIR"]), "billing_api.log")
    assert len([line for line in lines if "request_id=cmd-run-1 " in line]) == 100


def test_sigterm_handler_chains_to_the_previous_one(tmp_path, env):
    script = (
        "import signal, sys\n"
        "def mine(signum, frame):\n"
        "    print('previous handler ran', flush=True); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, mine)\n"
        "import django; django.setup()\n"
        "import logging, os\n"
        "logging.getLogger('billing').info('before the signal')\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    result = subprocess.run(
        [str(BIN / "python"), "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and "previous handler ran" in result.stdout
    lines = read_all(Path(env["LOG_BASE_DIR"]), "billing_api.log")
    assert any("before the signal" in line for line in lines)
