"""PostgreSQL for the tests: probe a server, or run a throwaway one that a test can stop.

`python -m tests.e2e.postgres URL` prints host:port/db and exits 0 when a server answers at
URL, else prints why (never the password) and exits 1: `make test-pg` decides on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.polling import poll_until

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def where(url: str) -> str:
    """host:port/db of a URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def probe(url: str, timeout: int = 3) -> str | None:
    """None if a PostgreSQL server answers at `url`, else the reason in a few words."""
    if not url.startswith(("postgres://", "postgresql://")):
        return f"{url!r} is not a postgres:// URL"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(url, connect_timeout=timeout).close()
    except psycopg.Error as exc:
        # libpq: 'connection failed: connection to server at "h", port 1 failed: <reason>'
        text = str(exc).strip()
        reason = text.splitlines()[0].rsplit(": ", 1)[-1] if text else type(exc).__name__
        return f"cannot connect to PostgreSQL at {where(url)} ({reason.strip()})"
    return None


def server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, if this machine has them."""
    for directory in [*BIN_DIRS, *(Path(p) for p in os.environ.get("PATH", "").split(":"))]:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory on a free 127.0.0.1 port.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user
    and every server command runs through `runuser`. Trust authentication, fsync off: it
    lives for one test. `stop()` and `start()` may be called mid-test; `destroy()` removes it.
    """

    def __init__(self, port: int, binaries: Path) -> None:
        self.port = port
        self.bin = binaries
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="billing-pg-"))
        self.data = self.dir / "data"
        try:
            if self.as_root:
                shutil.chown(self.dir, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
            self.start()
        except BaseException:
            self.destroy()
            raise

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.dir, check=False
        )
        if result.returncode != 0:
            msg = (
                f"{tool} failed ({result.returncode}): {result.stdout[-800:]}{result.stderr[-800:]}"
            )
            raise RuntimeError(msg)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop now (like a crash or a failover): connections are cut, not drained."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running():
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until_down(url: str, timeout: float = 30) -> None:
    if not poll_until(lambda: probe(url, timeout=1) is not None, timeout, interval=0.1):
        msg = f"{where(url)} still answers after {timeout}s"
        raise RuntimeError(msg)


if __name__ == "__main__":
    problem = probe(sys.argv[1])
    print(problem or where(sys.argv[1]))
    sys.exit(1 if problem else 0)
