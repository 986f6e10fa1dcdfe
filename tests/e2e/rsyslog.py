"""Real rsyslogd agents and a central server on 127.0.0.1, for the tests of "Several hosts".

The configurations are deploy/rsyslog/'s, rendered by deploy/rsyslog/render.py with a CA made
for the test; every process has its own work directory and ports, and is stopped by the test.
`make test` installs rsyslog when missing; without it these tests are skipped (failed when
CI=true).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from deploy.rsyslog import render
from tests import polling
from tests.e2e.servers import free_port

RSYSLOGD = "/usr/sbin/rsyslogd"
MODULES = Path("/usr/lib/x86_64-linux-gnu/rsyslog")
FILE_NAMES = (
    "billing_api.log",
    "billing_api_debug.log",
    "billing_api_errors.log",
    "billing_api_requests.log",
    "billing_api_security.log",
)
T = TypeVar("T")


def require_rsyslog() -> None:
    """Skip (fail under CI=true) when rsyslogd, its RELP modules or openssl are missing."""
    missing = [
        what
        for what, ok in (
            ("rsyslog", Path(RSYSLOGD).exists()),
            ("rsyslog-relp", any(MODULES.glob("imrelp.so")) or _module("imrelp")),
            ("openssl", shutil.which("openssl") is not None),
        )
        if not ok
    ]
    if not missing:
        return
    message = f"{', '.join(missing)} missing: apt-get install rsyslog rsyslog-relp rsyslog-gnutls"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _module(name: str) -> bool:
    return any(Path("/usr/lib").glob(f"*/rsyslog/{name}.so"))


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll `check` until it returns something true; fail with `what` after `timeout`."""
    return polling.wait_for(check, what, timeout=timeout)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Pki:
    """A CA for the test (and a foreign one), with certificates made on demand."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory / "certs"
        render.make_ca(self.dir)

    def cert(self, name: str) -> Path:
        if not (self.dir / f"{name}.pem").exists():
            render.make_cert(self.dir, name)
        return self.dir


class Rsyslogd:
    """One rsyslogd in the foreground (-n) with its own configuration and pid file."""

    def __init__(self, conf: Path, work: Path) -> None:
        self.conf, self.work = conf, work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Rsyslogd:
        self.work.mkdir(parents=True, exist_ok=True)
        self.out = open(self.work / "stderr.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.work / "rsyslogd.pid")],
            stdout=self.out,
            stderr=self.out,
            start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.out.close()
        self.proc = None

    def own_log(self) -> str:
        path = self.work / "rsyslogd.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        err = self.work / "stderr.out"
        return text + (err.read_text(errors="replace") if err.exists() else "")


class Central(Rsyslogd):
    def __init__(self, tmp: Path, pki: Pki, hosts: list[str]) -> None:
        self.root = tmp / "central-root"
        self.ports = {host: free_port() for host in hosts}
        work = tmp / "central-work"
        work.mkdir(parents=True, exist_ok=True)
        conf = tmp / "central.conf"
        pki.cert("central")
        conf.write_text(
            render.Central(self.root, work, pki.dir, dict(self.ports), address="127.0.0.1").render()
        )
        super().__init__(conf, work)

    def start(self) -> Central:
        super().start()
        for port in self.ports.values():
            wait_for(lambda p=port: port_open(p) or not self.running(), f"central on :{port}")
        assert self.running(), self.own_log()
        return self

    def refusals(self) -> list[str]:
        """What the central logged about sessions it broke off (imrelp's errors)."""
        path = self.work / "rsyslogd.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return [line for line in text.splitlines() if "imrelp" in line]

    def lines(self, host: str, name: str) -> list[bytes]:
        path = self.root / host / name
        return path.read_bytes().splitlines() if path.exists() else []


class Agent(Rsyslogd):
    def __init__(
        self,
        tmp: Path,
        pki: Pki,
        host: str,
        logs: Path,
        port: int,
        *,
        cert_dir: Path | None = None,
        tag: str = "",
    ) -> None:
        work = tmp / f"agent-{host}{tag}"
        work.mkdir(parents=True, exist_ok=True)
        conf = tmp / f"agent-{host}{tag}.conf"
        if cert_dir is None:
            pki.cert(host)
        agent = render.Agent(
            host, logs, work, "127.0.0.1", port, cert_dir or pki.dir,
            retry_interval=1, timeout=3, queue_max_disk="64m", queue_file_size="1m",
        )  # fmt: skip
        conf.write_text(agent.render())
        super().__init__(conf, work)

    def start(self) -> Agent:
        super().start()
        return self


def _files(logs: Path, name: str) -> list[tuple[int, int, Path]]:
    """The host's files of `name`, oldest first (backup number, then the live file as 0),
    each with its inode: two equal listings around a read mean no rotation ran during it."""
    found = []
    for path in logs.glob(name + "*"):
        suffix = path.name[len(name) :]
        if suffix == "" or (suffix[:1] == "." and suffix[1:].isdigit()):
            with contextlib.suppress(FileNotFoundError):  # renamed since the glob
                found.append((int(suffix[1:] or 0), path.stat().st_ino, path))
    return sorted(found, reverse=True)


def host_lines(logs: Path, name: str) -> list[bytes]:
    """Every line a host wrote to `name`: its backups (oldest first) and the live file.

    The host rotates while it is read (app-b every 32 KB): a listing taken before and after
    the read must match, or the read starts again; a file renamed away mid-read as well."""
    for _ in range(100):
        before = _files(logs, name)
        lines: list[bytes] = []
        try:
            for _, _, path in before:
                lines += path.read_bytes().splitlines()
        except FileNotFoundError:
            continue
        if _files(logs, name) == before:
            return lines
    raise AssertionError(f"{logs / name}: rotated during each of 100 reads")


def arrived(central: Central, host: str, logs: Path) -> bool:
    """Every line of every file of the host is in the central's file of that name."""
    for name in FILE_NAMES:
        wanted = set(host_lines(logs, name))
        if wanted and not wanted <= set(central.lines(host, name)):
            return False
    return True


def missing(central: Central, host: str, logs: Path) -> dict[str, int]:
    """How many distinct lines of each file have not (yet) arrived (for failure messages)."""
    return {
        name: len(set(host_lines(logs, name)) - set(central.lines(host, name)))
        for name in FILE_NAMES
    }
