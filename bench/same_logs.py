"""The pure and the compiled build (make compiled) write byte-identical log files.

    python bench/same_logs.py --pure .venv/bin/python \\
        --compiled .venv-compiled/bin/python --compiled-tree .venv-compiled/src

Each build runs the same requests in its own process, from its own tree (bench.settings'
"ours" variant: the text, JSON and ECS formats in turn), with the clocks, the random bytes
and the process ID fixed as bench/instructions.py fixes them: every log file the two
write must be the same, byte for byte. Exit status 1 and the first differing line when
not. Each run also says which build it imported (.so or .py), so a comparison of a build
with itself is caught.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
FORMATS = ("text", "json", "ecs")
ORDER = b'{"amount": "19.99", "currency": "USD", "description": "Pro plan"}'
CARD = b'{"amount": "19.99", "currency": "USD", "description": "card 4111 1111 1111 1111"}'


def requests() -> list[tuple[str, dict]]:
    """(path, environ extras): what each build is asked, in this order."""
    post = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json"}
    return [
        ("/api/v1/ping/", {}),
        ("/api/v1/orders/", {**post, "body": ORDER}),
        ("/api/v1/orders/", {**post, "body": CARD}),  # a card number in a logged value
        ("/api/v1/orders/", {**post, "body": b'{"amount": "x"}'}),  # a 400
        ("/api/v1/orders/", {**post, "body": b"{not json"}),  # a 400 the parser makes
        ("/no/such/page/", {}),  # a 404 without a route
        ("/api/v1/ping/", {"QUERY_STRING": "card=4111111111111111&token=s3cr3t&q=a%20b"}),
        ("/api/v1/ping/", {"HTTP_X_REQUEST_ID": "client-id-0001"}),
        ("/api/v1/ping/", {"HTTP_X_REQUEST_ID": "bad id with spaces\n"}),
        (
            "/api/v1/ping/",
            {"HTTP_TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        ),
        (
            "/api/v1/ping/",
            {"HTTP_TRACEPARENT": "00-4111111111111111aaaaaaaaaaaaaaaa-00f067aa0ba902b7-01"},
        ),
        ("/api/v1/ping/", {"HTTP_USER_AGENT": "evil\x1b[31m\r\nagent", "REMOTE_ADDR": "10.0.0.7"}),
        ("/api/v1/ping/", {"REQUEST_METHOD": "DELETE"}),  # a 405
        ("/api/v1/p%C3%A9ng/", {"PATH_INFO": "/api/v1/p\xc3\xa9ng/"}),  # a 404, non-ASCII path
    ]


def drive() -> None:
    """In the measured build's process, from its tree: the requests, then the writer drained."""
    rng = random.Random(12345)
    os.urandom = rng.randbytes
    os.getpid = lambda: 4242
    time.time = functools.partial(next, itertools.count(1.8e9, 50e-6))
    time.perf_counter = functools.partial(next, itertools.count(1000.0, 50e-6))
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    import observability.lines.textline
    from bench.inprocess import environ
    from observability import flush_logs

    from observability.output import writer

    # As bench/instructions.py: the writer thread wakes for a flush only, and the
    # interpreter never switches threads on a timer, so records are given their identities
    # in the same order in every run (the writer renders what is still a record).
    writer.IDLE_WAIT = writer.TICK_INTERVAL = 3600.0
    sys.setswitchinterval(1000.0)
    handler = WSGIHandler()
    statuses = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status.split()[0])

    for path, extra in requests():
        extra = dict(extra)
        body = extra.pop("body", b"")
        if body:
            extra["CONTENT_LENGTH"] = str(len(body))
        response = handler(environ(path, body=body, **extra), start_response)
        for _chunk in response:
            pass
        response.close()
    flush_logs(60)
    print(json.dumps({"textline": observability.lines.textline.__file__, "statuses": statuses}))


def run(python: str, tree: Path, log_format: str, logs: Path) -> dict:
    logs.mkdir(parents=True)
    env = {
        **os.environ,
        "BENCH_VARIANT": "ours",
        "BENCH_LOG_DIR": str(logs),
        "BENCH_LOG_FORMAT": log_format,
        "PYTHONHASHSEED": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "same-logs-only",
    }
    done = subprocess.run(
        [os.path.abspath(python), str(tree / "bench" / "same_logs.py"), "--drive"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        sys.exit(f"{python} in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(pure: Path, compiled: Path) -> list[str]:
    """The differences between two log directories (names and bytes); [] when identical."""
    names = sorted(p.name for p in pure.iterdir())
    other = sorted(p.name for p in compiled.iterdir())
    if names != other:
        return [f"files differ: {names} != {other}"]
    problems = []
    for name in names:
        a, b = (pure / name).read_bytes(), (compiled / name).read_bytes()
        if a != b:
            diff = difflib.unified_diff(
                a.decode(errors="replace").splitlines(),
                b.decode(errors="replace").splitlines(),
                "pure/" + name,
                "compiled/" + name,
                lineterm="",
                n=0,
            )
            problems.append("\n".join(itertools.islice(diff, 8)))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pure", required=True, help="the pure build's python")
    parser.add_argument("--compiled", required=True, help="the compiled build's python")
    parser.add_argument("--compiled-tree", required=True, type=Path)
    parser.add_argument("--pure-tree", type=Path, default=HERE.parents[1])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="same-logs-"))
    failed = False
    for log_format in FORMATS:
        seen = {}
        for build, python, tree in (
            ("pure", args.pure, args.pure_tree),
            ("compiled", args.compiled, args.compiled_tree),
        ):
            seen[build] = run(python, tree.resolve(), log_format, work / log_format / build)
        kinds = {build: Path(info["textline"]).suffix for build, info in seen.items()}
        if kinds != {"pure": ".py", "compiled": ".so"}:
            sys.exit(f"not a pure and a compiled build: {kinds}")
        problems = compare(work / log_format / "pure", work / log_format / "compiled")
        files = sorted(p.name for p in (work / log_format / "pure").iterdir())
        size = sum(p.stat().st_size for p in (work / log_format / "pure").iterdir())
        statuses = " ".join(seen["pure"]["statuses"])
        if seen["pure"]["statuses"] != seen["compiled"]["statuses"]:
            problems.append(f"statuses differ: {statuses} != {seen['compiled']['statuses']}")
        if problems:
            failed = True
            print(f"{log_format}: DIFFERENT\n" + "\n".join(problems))
        else:
            print(f"{log_format}: identical, {len(files)} files, {size} bytes ({statuses})")
    print(f"logs in {work}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--drive"]:
        drive()
    else:
        main()
