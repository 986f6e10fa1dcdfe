"""A site with background work for the end-to-end tests: its own Redis, gunicorn, a worker.

Redis is the tests' own (`redis-server --port <free> --save ''`), started and stopped here,
never the machine's. The worker is Celery's prefork pool with two processes, and beat.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.servers import BIN, ROOT, Server, free_port, gunicorn, prepare_db, server_env
from tests.polling import poll_until

REDIS = shutil.which("redis-server")


def need_redis() -> str:
    if REDIS is None:
        message = "redis-server is not installed (make redis installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDIS


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    def __init__(self, directory: Path) -> None:
        self.binary = need_redis()
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.directory)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited")
            return _answers(self.port)

        if not poll_until(up, timeout=30):
            raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Worker:
    """`celery -A config worker --beat`, prefork, two processes, its output in a file."""

    def __init__(
        self, env: dict[str, str], directory: Path, *, beat: bool = True, name: str = "e2e"
    ) -> None:
        self.out = open(directory / f"worker-{name}-{time.monotonic_ns()}.out", "w+b")  # noqa: SIM115
        args = [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "INFO"]
        args += ["--pool", "prefork", "--concurrency", "2", "--hostname", f"{name}@%h"]
        # One task per child: each child leaves through os._exit after its task, so every
        # line the tests wait for proves the child drained its queue before exiting.
        args += ["--max-tasks-per-child", "1"]
        if beat:
            args += ["--beat", "--schedule", str(directory / "beat-schedule")]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.out, stderr=self.out, start_new_session=True
        )

    def children(self) -> list[int]:
        found = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]

    def output(self) -> str:
        self.out.flush()
        self.out.seek(0)
        return self.out.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.out.close()


class Site:
    def __init__(self, tmp: Path) -> None:
        self.redis = Redis(tmp)
        self.env = server_env(
            tmp,
            DJANGO_SETTINGS_MODULE="tests.e2e.settings_celery",
            CELERY_BROKER_URL=self.redis.url,
            CELERY_PUBLISH_TIMEOUT="1",
            WEBHOOK_ALLOW_PRIVATE_URLS="1",
            WEBHOOK_TIMEOUT="1",
            WEBHOOK_BACKOFF_BASE="0.5",
            WEBHOOK_BACKOFF_MAX="5",
            WEBHOOK_SWEEP_INTERVAL="1",
        )
        self.logs = Path(self.env["LOG_BASE_DIR"])
        self.db = self.env["DATABASE_URL"].removeprefix("sqlite:///")
        prepare_db(self.env)
        self.web: Server = gunicorn(tmp, "--workers", "2", env=self.env)
        self.tmp = tmp
        self.worker = Worker(self.env, tmp)
        self.worker_crashes: list[str] = []
        self.wait_for(lambda: self.worker_ready("e2e"), "the worker is ready", timeout=60)

    def worker_ready(self, name: str) -> bool:
        """Whether the worker named `name` wrote its `ready.` line."""
        return any(
            f"{name}@" in line and "ready." in line
            for line in self.text("billing_api.log").splitlines()
        )

    def text(self, name: str) -> str:
        return "\n".join(
            path.read_text(encoding="utf-8", errors="replace")
            for path in sorted(self.logs.glob(name + "*"))
            if not path.name.endswith(".lock")
        )

    def everything(self) -> str:
        texts = [p.read_bytes().decode(errors="replace") for p in sorted(self.logs.iterdir())]
        return "\n".join([*texts, self.worker.output(), self.web.output()])

    def wait_for(self, ready, what: str, timeout: float = 30.0, *, restart: bool = False):
        """Poll `ready` until it gives something true; `restart`: a worker that died is
        started again (as a supervisor would), its last output kept in worker_crashes."""

        def check():
            value = ready()
            if value:
                return value
            if self.worker.proc.poll() is not None:
                if not restart:
                    raise AssertionError(f"the worker exited: {self.worker.output()}")
                self.worker_crashes.append(self.worker.output())
                self.worker.stop()
                self.worker = Worker(self.env, self.tmp)
            return None

        value = poll_until(check, timeout=timeout, interval=0.1)
        if value:
            return value
        raise AssertionError(f"timed out waiting for {what}; worker: {self.worker.output()}")

    def logtrace(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "logtrace", *args, "--dir", str(self.logs)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout + done.stderr

    def close(self) -> None:
        self.worker.stop()
        self.web.stop()
        self.redis.stop()
