"""Several hosts: two app hosts, each with its own agent, ship to one central rsyslogd.

Real gunicorn servers ("app-a", "app-b": their own log directories; app-b rotates its files
every few KB), real rsyslogd agents and central with deploy/rsyslog/'s configurations and
a CA made for the test, on 127.0.0.1 with free ports. Every wait polls for the exact lines
expected, with a deadline. README, "Several hosts".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.rsyslog import (
    FILE_NAMES,
    Agent,
    Central,
    Pki,
    arrived,
    host_lines,
    missing,
    require_rsyslog,
    wait_for,
)
from tests.e2e.servers import ROOT, Server, gunicorn, prepare_db, server_env

pytestmark = pytest.mark.e2e

HOSTS = ("app-a", "app-b")
ROTATE_BYTES = 32768  # app-b's files rotate every 32 KB: rotations all the time


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.pki = Pki(tmp)
        self.central = Central(tmp, self.pki, list(HOSTS)).start()
        base = server_env(tmp)
        prepare_db(base)
        self.env = base  # one database, as two app hosts behind a load balancer share one
        self.logs: dict[str, Path] = {}
        self.servers: dict[str, Server] = {}
        self.agents: dict[str, Agent] = {}
        for host in HOSTS:
            logs = tmp / host / "logs"
            logs.mkdir(parents=True)
            extra = {"LOG_BASE_DIR": str(logs)}
            if host == "app-b":
                extra |= {"LOG_MAX_BYTES": str(ROTATE_BYTES), "LOG_BACKUP_COUNT": "500"}
            (tmp / host / "tmp").mkdir()
            env = {**base, **extra, "TMPDIR": str(tmp / host / "tmp")}
            self.logs[host] = logs
            self.agents[host] = Agent(tmp, self.pki, host, logs, self.central.ports[host]).start()
            self.servers[host] = gunicorn(tmp / host / "tmp", "--workers", "2", env=env)

    def traffic(self, host: str, count: int) -> list[str]:
        """`count` requests on `host` (a listing, a 404, a login); their request IDs."""
        server = self.servers[host]
        ids = []
        logged = []
        for n in range(count):
            path = ("/api/v1/plans/", "/api/v1/nowhere/", "/health/")[n % 3]
            _, headers, _ = server.request("GET", path)
            ids.append(headers.get("X-Request-ID", ""))
            if path != "/health/":  # EXCLUDE_PATHS: no lifecycle lines
                logged.append(ids[-1])
        # The writer runs after the response: until each request's terminal line is in the
        # host's own file, "every line of the host arrived" would not yet count it.
        for rid in logged:
            needle = f"request_id={rid} ".encode()
            wait_for(
                lambda needle=needle: any(
                    needle in line and b"API Request " in line and b" started" not in line
                    for line in host_lines(self.logs[host], "billing_api_requests.log")
                ),
                f"the terminal line of {rid} in {host}'s own requests file",
            )
        return ids

    def wait_arrived(self, *hosts: str, timeout: float = 90.0) -> None:
        for host in hosts or HOSTS:
            wait_for(
                lambda h=host: arrived(self.central, h, self.logs[h]),
                f"every line of {host} centrally (missing: "
                f"{missing(self.central, host, self.logs[host])})",
                timeout,
            )

    def logtrace(self, *args: str) -> dict:
        """`manage.py logtrace --root <central root> ... --json`, as a user runs it."""
        done = subprocess.run(
            [sys.executable, "manage.py", "logtrace", "--root", str(self.central.root), *args,
             "--json"],
            cwd=ROOT, env=self.env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return json.loads(done.stdout)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        for agent in self.agents.values():
            agent.stop()
        self.central.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_rsyslog()
    made = World(tmp_path_factory.mktemp("central"))
    yield made
    made.stop()


@pytest.fixture(autouse=True)
def restarted(world):
    """A test that fails while it has the central or an agent stopped leaves them running for
    the next tests: one failure, not a cascade of "not within" failures behind it."""
    yield
    for process in (world.central, *world.agents.values()):
        if not process.running():
            process.stop()
            process.start()


def duplicates(world: World, host: str) -> int:
    return sum(
        count - 1
        for name in FILE_NAMES
        for count in Counter(world.central.lines(host, name)).values()
        if count > 1
    )


def dup_counts(world: World) -> dict[str, int]:
    return {host: duplicates(world, host) for host in HOSTS}


def only_host_lines(world: World) -> None:
    """The central holds nothing a host did not write, and each host's lines in its folder."""
    assert sorted(p.name for p in world.central.root.iterdir()) == sorted(HOSTS)
    for host in HOSTS:
        stored = world.central.root / host
        assert {p.name for p in stored.iterdir()} <= set(FILE_NAMES)
        for name in FILE_NAMES:
            extra = set(world.central.lines(host, name)) - set(host_lines(world.logs[host], name))
            assert not extra, f"{host}/{name}: lines the host never wrote: {list(extra)[:3]}"


def test_every_line_of_both_hosts_arrives_byte_for_byte_while_files_rotate(world):
    world.traffic("app-a", 30)
    # app-a calls app-b with its traceparent: one trace across two hosts
    _, headers, _ = world.servers["app-a"].request("GET", "/api/v1/plans/")
    trace, span = headers["traceresponse"].split("-")[1:3]
    _, called, _ = world.servers["app-b"].request(
        "GET", "/api/v1/plans/", headers={"traceparent": f"00-{trace}-{span}-01"}
    )
    ids = {"app-a": headers["X-Request-ID"], "app-b": called["X-Request-ID"]}
    backups = world.logs["app-b"] / "billing_api_requests.log.3"
    wait_for(lambda: world.traffic("app-b", 10) and backups.exists(), "app-b's third rotation")
    world.wait_arrived()
    only_host_lines(world)
    print(f"duplicates after the first traffic: {dup_counts(world)}")
    story = world.logtrace("--trace", trace)
    assert [(r["host"], r["request_id"]) for r in story["requests"]] == [
        ("app-a", ids["app-a"]),
        ("app-b", ids["app-b"]),
    ]


def test_central_outage_of_ten_seconds_loses_nothing(world):
    world.traffic("app-a", 5)
    world.wait_arrived()
    world.central.stop()
    ended = time.monotonic() + 10
    sent = 0
    while time.monotonic() < ended:  # traffic on both hosts while the central is away
        for host in HOSTS:
            world.traffic(host, 1)
            sent += 1
    world.central.start()
    world.wait_arrived(timeout=120)
    only_host_lines(world)
    assert sent > 20
    print(f"duplicates after the outage: {dup_counts(world)}")


def test_agent_killed_resumes_from_its_state_and_loses_nothing(world):
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            world.traffic("app-a", 1)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        before = len(world.central.lines("app-a", "billing_api_requests.log"))
        wait_for(
            lambda: len(world.central.lines("app-a", "billing_api_requests.log")) > before + 20,
            "app-a's agent shipping the new traffic",
        )
        world.agents["app-a"].stop(signal.SIGKILL)
        world.traffic("app-a", 10)  # written while no agent runs
        world.agents["app-a"].start()
        world.traffic("app-a", 10)
    finally:
        stop.set()
        sender.join(30)
    world.wait_arrived("app-a", timeout=120)
    only_host_lines(world)
    print(f"duplicates after the SIGKILL: {dup_counts(world)}")
    # a line stored twice is shown once: the story of a request whose lines arrived twice
    stored = Counter(world.central.lines("app-a", "billing_api_requests.log"))
    twice = [line for line, count in stored.items() if count > 1 and b"request_id=" in line]
    if twice:
        rid = twice[-1].split(b"request_id=")[1].split(b" ")[0].decode()
        story = world.logtrace(rid)
        assert story["shared_by"] == 1
        ids = [r["fields"]["record_id"] for r in story["records"]]
        assert len(ids) == len(set(ids)) >= 2


def test_rotation_while_the_agent_is_stopped_loses_nothing(world):
    logs = world.logs["app-b"]
    world.agents["app-b"].stop()
    first = logs / "billing_api_requests.log.1"
    inode = first.stat().st_ino if first.exists() else None

    def rotated() -> bool:
        world.traffic("app-b", 3)
        return first.exists() and first.stat().st_ino != inode

    wait_for(rotated, "app-b's requests file to rotate while its agent is stopped")
    world.traffic("app-b", 3)
    world.agents["app-b"].start()
    world.wait_arrived("app-b", timeout=120)
    only_host_lines(world)


def test_hostile_lines_and_a_64kb_line_arrive_unchanged_in_their_host_folder(world):
    logs = world.logs["app-a"]
    forged = "<13>1 2026-12-02T10:00:00.000Z app-b billing_api.log - - - forged"
    path = "/api/v1/" + urllib.parse.quote(f"{forged}\n<14>Dec  2 10:00:00 app-b x: y\\n]")
    status, headers, _ = world.servers["app-a"].request("GET", path)
    assert status == 404
    request_id = headers["X-Request-ID"]
    # Written to the file as the app writes its lines (one line, its own record_id): the
    # central must store exactly these bytes, under app-a.
    hostile = (
        f"2026-12-02 10:00:00,000 INFO [billing] {forged} \\n<14>1 - app-b - - - - x\t"
        "tab \u202e bidi \u00e9 | request_id=- record_id=hostile1"
    ).encode()
    big = (
        b"2026-12-02 10:00:00,001 ERROR [billing] big | request_id=- " + b"x" * 65536
        + b" record_id=big1"
    )  # fmt: skip
    with open(logs / "billing_api.log", "ab") as handle:
        handle.write(hostile + b"\n" + big + b"\n")
    world.wait_arrived("app-a")
    stored = world.central.lines("app-a", "billing_api.log")
    assert hostile in stored
    digest = hashlib.sha256(big).hexdigest()
    assert [hashlib.sha256(line).hexdigest() for line in stored if len(line) > 65536] == [digest]
    requests = world.central.lines("app-a", "billing_api_requests.log")
    assert any(request_id.encode() in line and b"forged" in line for line in requests)
    for name in FILE_NAMES:  # nothing of it reached app-b's folder
        assert not any(b"forged" in line for line in world.central.lines("app-b", name))
    only_host_lines(world)


def _bad_peer(world: World, kind: str) -> Path:
    """A certificate directory for a peer the central must refuse on app-a's port."""
    directory = world.tmp / f"bad-{kind}"
    directory.mkdir()
    shutil.copy(world.pki.dir / "ca.pem", directory / "ca.pem")  # it trusts the central
    if kind == "other-ca":
        other = Pki(world.tmp / "other")
        other.cert("app-a")
        source = other.dir
        name = "app-a"
    else:
        name = "app-c" if kind == "wrong-name" else "app-b"
        source = world.pki.cert(name)
    for suffix in ("pem", "key"):
        shutil.copy(source / f"{name}.{suffix}", directory / f"app-a.{suffix}")
    return directory


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        pytest.param("no-cert", "TLS handshake failed", id="no-cert"),
        pytest.param("other-ca", "certificate validation failed", id="other-ca"),
        pytest.param("wrong-name", "permited name found', peer is 'DNSname: app-c", id="name"),
        # app-b's own, valid certificate on app-a's port: it cannot write as app-a
        pytest.param("other-host", "permited name found', peer is 'DNSname: app-b", id="host"),
    ],
)
def test_a_peer_without_the_right_certificate_is_refused(world, kind, said):
    logs = world.tmp / f"bad-{kind}-logs"
    logs.mkdir()
    marker = f"from a {kind} peer".encode()
    (logs / "billing_api.log").write_bytes(b"2026-12-02 10:00:00,000 INFO [x] " + marker + b"\n")
    port = world.central.ports["app-a"]
    if kind == "no-cert":
        agent = Agent(world.tmp, world.pki, "app-a", logs, port, tag=f"-{kind}")
        text = agent.conf.read_text()
        text = "\n".join(line for line in text.splitlines() if "tls.my" not in line)
        agent.conf.write_text(text)
    else:
        certs = _bad_peer(world, kind)
        agent = Agent(world.tmp, world.pki, "app-a", logs, port, cert_dir=certs, tag=f"-{kind}")
    seen = len(world.central.refusals())
    agent.start()
    try:
        refusal = wait_for(
            lambda: world.central.refusals()[seen:], f"the central to refuse the {kind} peer"
        )
        assert said in refusal[0], refusal
        # app-a's own agent still delivers on that port after the refusal
        world.traffic("app-a", 2)
        world.wait_arrived("app-a")
    finally:
        agent.stop()
    for host in HOSTS:
        for name in FILE_NAMES:
            assert not any(marker in line for line in world.central.lines(host, name))


def test_the_central_root_rotated_by_logrotate_is_read_whole(world):
    """deploy/rsyslog/central.logrotate: renamed to name.1, the central reopens its files on
    HUP, new lines go to a new file, and logtrace --root reads both."""
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate missing")
    rotated_id = world.traffic("app-a", 1)[0]
    world.wait_arrived("app-a")
    conf = (ROOT / "deploy" / "rsyslog" / "central.logrotate").read_text()
    conf = conf.replace("/srv/billing-logs", str(world.central.root))
    conf = conf.replace("/run/billing-central.pid", str(world.central.work / "rsyslogd.pid"))
    conf = conf.replace("size 100M", "size 1")
    (world.tmp / "logrotate.conf").write_text(conf)
    subprocess.run(
        ["logrotate", "-s", str(world.tmp / "logrotate.state"), str(world.tmp / "logrotate.conf")],
        check=True,
        timeout=60,
    )
    backup = world.central.root / "app-a" / "billing_api_requests.log.1"
    assert rotated_id.encode() in backup.read_bytes()
    new_id = world.traffic("app-a", 1)[0]
    live = world.central.root / "app-a" / "billing_api_requests.log"
    wait_for(lambda: live.exists() and new_id.encode() in live.read_bytes(), "the reopened file")
    for rid in (rotated_id, new_id):
        assert world.logtrace(rid)["summary"]["request_id"] == rid
