"""Real servers, real files: nothing lost, duplicated, torn or crossed under gunicorn and uvicorn."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from observability.logtrace import parse_line
from tests.e2e.servers import ROOT, gunicorn, read_all, uvicorn

pytestmark = pytest.mark.e2e


def check_lifecycle(lines: list[str], request_ids: list[str]) -> list[str]:
    """Problems found: unparsable lines, and IDs not seen exactly once started and once ended."""
    problems = []
    started, ended = Counter(), Counter()
    for line in lines:
        record = parse_line(line)
        if record is None:
            problems.append(f"unparsable line: {line[:120]!r}")
            continue
        if record.message.startswith("API Request started"):
            started[record.request_id] += 1
        elif record.message.startswith(("API Request completed", "API Request failed")):
            ended[record.request_id] += 1
    for rid in request_ids:
        if started[rid] != 1 or ended[rid] != 1:
            problems.append(f"{rid}: started {started[rid]}x, ended {ended[rid]}x")
    return problems


def test_gunicorn_four_workers_rotating_tiny_files_lose_nothing(tmp_path, env):
    # A loaded 2-core machine makes a worker's first requests slow: no warnings in the count.
    env.update(LOG_MAX_BYTES="20000", LOG_BACKUP_COUNT="2000")
    server = gunicorn(tmp_path, "-w", "4", env=env)
    try:

        def call(n):
            status, headers, _ = server.request("GET", f"/api/v1/plans/?n={n}")
            assert status == 401
            return headers["X-Request-ID"]

        ids = server.many(2000, 16, call)
    finally:
        assert server.stop() == 0
    log_dir = Path(env["LOG_BASE_DIR"])
    lines = read_all(log_dir, "billing_api_requests.log")
    backups = list(log_dir.glob("billing_api_requests.log.*"))
    assert len(backups) >= 10, "the files must actually have rotated"
    assert len(set(ids)) == 2000
    assert check_lifecycle(lines, ids) == []
    assert len(lines) == 4000
    # every security line of the same run parses too
    security = read_all(log_dir, "billing_api_security.log")
    assert all(parse_line(line) is not None for line in security)

    # Control: the checker does catch a 1% loss.
    random.seed(7)
    dropped = [line for line in lines if random.random() > 0.01]
    assert len(check_lifecycle(dropped, ids)) >= 20


def test_sigterm_right_after_last_response_loses_nothing(tmp_path, env):
    server = gunicorn(tmp_path, "-w", "2", env=env)
    token = server.token()
    try:

        def call(n):
            status, headers, _ = server.request(
                "POST",
                "/api/v1/payments/",
                {"amount": "1.00", "currency": "USD", "payment_method": "pm_card_visa"},
                token,
            )
            assert status == 201
            return headers["X-Request-ID"]

        ids = server.many(150, 6, call)
    finally:
        assert server.stop(signal.SIGTERM) == 0
    log_dir = Path(env["LOG_BASE_DIR"])
    assert check_lifecycle(read_all(log_dir, "billing_api_requests.log"), ids) == []
    events = read_all(log_dir, "billing_api.log")
    succeeded = [line for line in events if "payment_succeeded" in line]
    assert len(succeeded) == 150


def test_gunicorn_preload_still_writes(tmp_path, env):
    server = gunicorn(tmp_path, "-w", "2", "--preload", env=env)
    try:
        ids = server.many(
            40, 4, lambda n: server.request("GET", "/api/v1/plans/")[1]["X-Request-ID"]
        )
    finally:
        server.stop()
    assert (
        check_lifecycle(read_all(Path(env["LOG_BASE_DIR"]), "billing_api_requests.log"), ids) == []
    )


def test_uvicorn_concurrent_clients_no_cross_talk(tmp_path, env):
    server = uvicorn(tmp_path, "--workers", "2", env=env)
    token = server.token()
    try:

        def call(n):
            status, headers, body = server.request(
                "POST",
                "/api/v1/payments/",
                {"amount": f"{n + 1}.00", "currency": "USD", "payment_method": "pm_card_visa"},
                token,
                headers={"X-Request-ID": f"uv-{n}"},
            )
            assert status == 201, body
            return headers["X-Request-ID"], json.loads(body)["id"]

        results = server.many(120, 12, call)
    finally:
        server.stop()
    log_dir = Path(env["LOG_BASE_DIR"])
    assert [rid for rid, _ in results] == [f"uv-{n}" for n in range(120)]
    assert (
        check_lifecycle(read_all(log_dir, "billing_api_requests.log"), [r for r, _ in results])
        == []
    )
    payment_of = dict(results)
    for line in read_all(log_dir, "billing_api_requests.log"):
        record = parse_line(line)
        if record.request_id.startswith("uv-") and "completed" in record.message:
            # the JWT user, bound inside the sync view's thread, reaches the async middleware
            assert record.fields["username"] == "alice", line
    events = [parse_line(line) for line in read_all(log_dir, "billing_api.log")]
    checked = 0
    for record in events:
        if record and record.fields.get("event_type") == "payment_created":
            rid = record.request_id
            assert str(payment_of[rid]) == record.fields["payment_id"], record.raw
            assert record.fields["amount"] == f"{int(rid.split('-')[1]) + 1}.00"
            checked += 1
    assert checked == 120


def test_gthread_reused_threads_carry_no_stale_user(tmp_path, env):
    server = gunicorn(tmp_path, "-w", "1", "--worker-class", "gthread", "--threads", "4", env=env)
    token = server.token()
    try:

        def call(n):
            authed = n % 2 == 0
            status, headers, _ = server.request(
                "GET",
                "/api/v1/payments/",
                token=token if authed else None,
                headers={"X-Request-ID": f"gt-{n}"},
            )
            assert status == (200 if authed else 401)
            return headers["X-Request-ID"]

        ids = server.many(200, 8, call)
    finally:
        server.stop()
    lines = read_all(Path(env["LOG_BASE_DIR"]), "billing_api_requests.log")
    assert check_lifecycle(lines, ids) == []
    for line in lines:
        record = parse_line(line)
        if not record.request_id.startswith("gt-"):
            continue
        n = int(record.request_id.split("-")[1])
        if n % 2:  # anonymous: never a user left over from a previous request on the thread
            assert record.fields["user_id"] == "-", line
        elif "completed" in record.message:
            assert record.fields["username"] == "alice", line


def test_stalled_handler_requests_complete_and_drops_are_counted(tmp_path, env):
    log_dir = Path(env["LOG_BASE_DIR"])
    log_dir.mkdir()
    import os

    os.mkfifo(log_dir / "billing_api_requests.log")  # no reader: the writer blocks forever
    env.update(LOG_QUEUE_SIZE="200")
    server = gunicorn(tmp_path, "-w", "1", "--graceful-timeout", "3", env=env)
    try:
        statuses = server.many(600, 8, lambda n: server.request("GET", "/api/v1/plans/")[0])
        assert set(statuses) == {401}
        status, _, body = server.request("GET", "/health/")
        stats = json.loads(body)["logging"]
    finally:
        server.stop(signal.SIGKILL)
    assert status == 200
    assert stats["dropped_queue_full"] > 0
    assert stats["queued"] <= 200


def test_logtrace_tells_a_real_requests_story(tmp_path, env):
    server = gunicorn(tmp_path, "-w", "2", env=env)
    token = server.token()
    try:
        server.request(
            "POST",
            "/api/v1/payments/",
            {"amount": "5.00", "currency": "USD", "payment_method": "pm_card_visa"},
            token,
        )
        status, headers, _ = server.request(
            "POST",
            "/api/v1/payments/",
            {"amount": "99.99", "currency": "USD", "payment_method": "pm_card_declined"},
            token,
        )
        assert status == 402
        rid = headers["X-Request-ID"]
        server.request(
            "GET", "/api/v1/admin/stats/", token=token, headers={"X-Request-ID": "adm-1"}
        )
    finally:
        server.stop()
    result = subprocess.run(
        [sys.executable, "manage.py", "logtrace", rid, "--dir", env["LOG_BASE_DIR"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "POST /api/v1/payments/  status=402" in out
    assert "user=alice" in out
    body = [line for line in out.splitlines() if line.startswith("[")]
    assert body[0].startswith("[requests] ") and "API Request started" in body[0]
    completed = [line for line in body if "API Request completed - Status: 402" in line]
    assert len(completed) == 1 and completed[0].startswith("[requests] ")
    assert any("[django.request] Payment Required" in line for line in body)
    assert any(line.startswith("[general ]") and "payment_failed" in line for line in body)
    assert all(rid in line for line in body)
    stamps = [re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", line).group() for line in body]
    assert stamps == sorted(stamps)
    security = subprocess.run(
        [sys.executable, "manage.py", "logtrace", "adm-1", "--dir", env["LOG_BASE_DIR"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "[security] " in security.stdout and "unauthorized_admin_access" in security.stdout
