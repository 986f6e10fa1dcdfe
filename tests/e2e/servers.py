"""Start real gunicorn / uvicorn processes on 127.0.0.1 for end-to-end tests (bounded waits)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.polling import poll_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NEVER_SLOW = "3600"  # seconds: no request of a test lasts an hour


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SECRET_KEY": "e2e-secret-key-not-for-production-0123456789",
        "DEBUG": "0",
        "LOG_BASE_DIR": str(tmp / "logs"),
        "LOG_CONSOLE": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'e2e.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # No request of a test is slow unless the test says so (SLOW_REQUEST_THRESHOLD in
        # `extra`, with a view that waits as long as the test needs): a loaded machine can
        # make any request cross a threshold of real time, and add a warning line.
        "SLOW_REQUEST_THRESHOLD": NEVER_SLOW,
        # Temporary files of the server (gunicorn's metrics directory among them) stay in
        # the test's directory, also when a test kills the server.
        "TMPDIR": str(tmp),
        **extra,
    }


#: What differs from test to test in an environment and is not part of what the database
#: holds: pytest's name of the running test (prepare_db also leaves out every value under the
#: test's own directory, TMPDIR).
PER_TEST = ("DATABASE_URL", "LOG_BASE_DIR", "TMPDIR", "PYTEST_CURRENT_TEST")
#: SQLite databases migrated and seeded once in this test run, by the rest of the environment.
_templates: dict[str, Path] = {}


def prepare_db(env: dict[str, str]) -> None:
    """Migrate, create the cache table and seed the demo data in the environment's database.

    A SQLite database is a copy of one made by those same commands earlier in this run with
    the same environment (settings module, flags): three Django start-ups a test (about 10 s
    on a loaded machine) become one copy. PostgreSQL databases are prepared each time.
    """
    url = env["DATABASE_URL"]
    target = Path(url.removeprefix("sqlite:///"))
    if not url.startswith("sqlite:///") or target.exists():  # an existing one keeps its rows
        _manage(env)
        return
    own = env.get("TMPDIR") or str(target.parent)
    key = json.dumps(
        {k: v for k, v in env.items() if k not in PER_TEST and not v.startswith(own)},
        sort_keys=True,
    )
    template = _templates.get(key)
    if template is None:
        home = Path(tempfile.mkdtemp(prefix="e2e-template-"))
        template = home / "template.sqlite3"
        _manage(
            {
                **env,
                "DATABASE_URL": f"sqlite:///{template}",
                "LOG_BASE_DIR": str(home / "logs"),
                "TMPDIR": str(home),
            }
        )
        _templates[key] = template
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    # The backup API copies what a reader sees, whatever the journal mode (WAL here).
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)


def _manage(env: dict[str, str]) -> None:
    for args in (["migrate", "--noinput"], ["createcachetable"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )


class Server:
    def __init__(
        self, args: list[str], env: dict[str, str], port: int, ready: tuple[int, ...] = (200,)
    ) -> None:
        """Start the server; it is up once /health/ answers with a status in `ready`
        (a server whose database is down on purpose answers 503)."""
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(Path(env["LOG_BASE_DIR"]).parent / f"server-{port}.out", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )
        if not poll_until(lambda: self.answers(ready), timeout=60, interval=0.1):
            output = self.output()  # before stop() closes the file
            self.stop()
            raise RuntimeError(f"server did not start: {output}")

    def answers(self, ready: tuple[int, ...]) -> bool:
        """/health/ answers with a status in `ready`; the server's exit is an error."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: {self.output()}")
        try:
            with urllib.request.urlopen(self.base + "/health/", timeout=2):
                return True
        except urllib.error.HTTPError as err:
            return err.code in ready
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        token: str | None = None,
        headers: dict | None = None,
    ) -> tuple[int, dict, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def token(self, username: str = "alice", password: str = "alice-demo-pass") -> str:
        status, _, body = self.request(
            "POST", "/api/v1/auth/token/", {"username": username, "password": password}
        )
        assert status == 200, body
        return json.loads(body)["access"]

    def many(self, count: int, concurrency: int, call) -> list:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(call, range(count)))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        return self.proc.returncode


def gunicorn(
    tmp: Path, *extra: str, env: dict[str, str], ready: tuple[int, ...] = (200,)
) -> Server:
    port = free_port()
    args = [
        str(BIN / "gunicorn"),
        "config.wsgi:application",
        "-c",
        "config/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "20",
        *extra,
    ]
    return Server(args, env, port, ready)


def uvicorn(tmp: Path, *extra: str, env: dict[str, str]) -> Server:
    port = free_port()
    args = [
        str(BIN / "uvicorn"),
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *extra,
    ]
    return Server(args, env, port)


def read_all(log_dir: Path, name: str) -> list[str]:
    """Every line of a file and its rotated backups."""
    lines: list[str] = []
    for path in sorted(log_dir.glob(name + "*")):
        if path.name.endswith(".lock"):
            continue
        lines += path.read_text(encoding="utf-8").splitlines()
    return lines
