"""Background work end to end: a real Redis of the tests' own, a prefork worker (two
processes) with beat, gunicorn with two workers, and a webhook receiver on 127.0.0.1.

One site serves the module; each test has its own endpoint and receiver, and removes the
endpoint when it ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

from billing.webhooks.signing import verify
from observability import new_task_id
from tests.e2e.celery_site import Site, Worker, need_redis
from tests.e2e.receiver import Receiver
from tests.e2e.servers import ROOT, gunicorn, server_env, uvicorn

pytestmark = pytest.mark.e2e
CARD = "4111111111111111"
BODY = {"amount": "19.00", "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_redis()
    made = Site(tmp_path_factory.mktemp("background"))
    yield made
    made.close()


@pytest.fixture
def endpoint(site):
    """(receiver, secret, staff token) of an endpoint made through the staff API."""
    staff = site.web.token("admin", "admin-demo-pass")
    made: list[int] = []

    def make(script: list[str]) -> tuple[Receiver, str]:
        receiver = Receiver(script).__enter__()
        status, _, body = site.web.request(
            "POST", "/api/v1/webhooks/endpoints/", {"url": receiver.url}, token=staff
        )
        assert status == 201, body
        made.append((json.loads(body)["id"], receiver))
        return receiver, json.loads(body)["secret"]

    yield make
    for endpoint_id, receiver in made:
        site.web.request("DELETE", f"/api/v1/webhooks/endpoints/{endpoint_id}/", token=staff)
        receiver.__exit__()


def new_id(prefix: str) -> str:
    """A request ID of this test's that can never read as a card number (the server refuses
    such an ID and gives another one): 12 hex digits after a letter, so at most 12 decimal
    digits in a row, whatever digits `prefix` ends with ("asgi-11-792851412949" once read
    as a 14-digit card number across its dash, and the test failed)."""
    return f"{prefix}-x{uuid.uuid4().hex[:12]}"


def pay(site: Site, token: str, request_id: str) -> tuple[int, dict]:
    status, _, body = site.web.request(
        "POST", "/api/v1/payments/", BODY, token=token, headers={"X-Request-ID": request_id}
    )
    return status, json.loads(body)


def task_lines(site: Site, request_id: str) -> list[str]:
    return [
        line
        for line in site.text("billing_api.log").splitlines()
        if "[billing.tasks]" in line and f"request_id={request_id} " in line
    ]


def webhook_lines(site: Site, request_id: str) -> list[str]:
    """The delivery attempts' own lines (one per attempt sent), of one request."""
    return [
        line
        for line in site.text("billing_api.log").splitlines()
        if "[billing.webhooks.delivery]" in line and f"request_id={request_id} " in line
    ]


def test_a_webhook_failing_twice_is_delivered_on_the_third_attempt_with_its_story(site, endpoint):
    receiver, secret = endpoint(["500", "timeout", "200"])
    rid = new_id("pay")
    status, payment = pay(site, site.web.token(), rid)
    assert status == 201
    site.wait_for(
        lambda: (
            len(receiver.snapshot()) >= 3
            and any("delivered (attempt 3)" in line for line in webhook_lines(site, rid))
        ),
        "the third attempt",
    )
    calls = receiver.snapshot()
    assert len(calls) == 3  # each attempt sent once, however many tasks ran for the row
    assert len({call.headers["Billing-Event-Id"] for call in calls}) == 1
    assert all(verify(c.headers["Billing-Signature"], c.body, secret) for c in calls)
    assert [json.loads(c.body)["data"]["id"] for c in calls] == [payment["id"]] * 3
    assert all(call.headers["X-Request-ID"] == rid for call in calls)
    # backoff: at least the base (0.5 s) after the 500, at least 1 s after the timeout
    assert calls[1].time - calls[0].time >= 0.5
    assert calls[2].time - calls[1].time >= 1.0
    lines = task_lines(site, rid)
    attempts = webhook_lines(site, rid)
    assert any("attempt 1 failed (HTTP 500)" in line for line in attempts), attempts
    assert any("attempt 2 failed (timeout after 1 s)" in line for line in attempts)
    assert any("delivered (attempt 3)" in line for line in attempts)
    assert sum("retried" in line for line in lines) >= 2
    assert any("HTTP 500; next attempt in" in line for line in lines)
    assert any("timeout after 1 s; next attempt in" in line for line in lines)
    # every attempt's records carry the payment request's trace
    request_line = next(
        line
        for line in site.text("billing_api_requests.log").splitlines()
        if f"request_id={rid} " in line
    )
    trace = re.search(r"trace_id=([0-9a-f]{32})", request_line).group(1)
    assert all(f"trace_id={trace} " in line for line in lines + attempts)
    story = site.logtrace(rid)
    for attempt in ("attempt 1 failed", "attempt 2 failed", "delivered (attempt 3)"):
        assert attempt in story, story
    assert "shared by" not in story  # the task's spans are its own, the request is one
    assert re.search(r"task [0-9a-f-]{36} billing.webhook_deliver: succeeded", story)
    assert story.index("POST /api/v1/payments/") < story.index("Task billing.webhook_deliver")
    assert story.index("Task billing.webhook_deliver published") < story.index("attempt 1 failed")
    last = next(line for line in attempts if "delivered (attempt 3)" in line)
    task_id = re.search(r"task_id=([0-9a-f-]{36}) ", last).group(1)
    from_task = site.logtrace("--task", task_id)
    assert f"set off by request {rid}" in from_task
    assert "delivered (attempt 3)" in from_task


def test_payments_made_while_the_broker_is_down_are_all_delivered_once_it_is_back(site, endpoint):
    receiver, _ = endpoint([])
    token = site.web.token()
    site.redis.stop()
    rids = [new_id("down") for _ in range(4)]
    try:
        answers = [pay(site, token, rid) for rid in rids]
    finally:
        site.redis.start()
    assert [status for status, _ in answers] == [201] * 4
    ids = {payment["id"] for _, payment in answers}
    rid_of = {payment["id"]: rid for rid, (_, payment) in zip(rids, answers, strict=True)}
    with sqlite3.connect(site.db) as db:
        events = {
            event_id: json.loads(payload)["id"]
            for event_id, payload in db.execute(
                "SELECT event_id, payload FROM billing_webhookevent"
            )
            if json.loads(payload)["id"] in ids
        }
    assert sorted(events.values()) == sorted(ids)  # one event per payment, none lost

    def delivered() -> bool:
        got = {call.headers["Billing-Event-Id"] for call in receiver.snapshot()}
        return set(events) <= got

    # kombu's Redis transport can die on reconnection ("Unrecoverable error", celery/celery
    # #10205's family): a supervisor restarts the worker; the outbox loses nothing meanwhile.
    site.wait_for(
        delivered, "every event delivered after the broker came back", timeout=60, restart=True
    )
    got = {call.headers["Billing-Event-Id"] for call in receiver.snapshot()}
    assert got == set(events)  # no event twice under another ID, none foreign
    for call in receiver.snapshot():  # published by the sweep, with the payment's story
        assert call.headers["X-Request-ID"] == rid_of[json.loads(call.body)["data"]["id"]]
    assert "not published" in site.text("billing_api.log")  # the outage was logged


class HungBroker:
    """A port that completes the TCP handshake (the kernel's backlog) and never answers: a
    broker that hangs. Closing it resets the connections it held."""

    def __enter__(self) -> HungBroker:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_a_hung_broker_costs_a_request_the_publish_timeout_and_loses_nothing(site, endpoint):
    """A web server whose broker accepts the connection and never answers: each payment is
    still a 201 (the publish gives up after CELERY_PUBLISH_TIMEOUT, 1 s here, and says so
    with the payment's request ID), its outbox row stays due, and the sweep (the site's
    beat, on the same database) has the webhook delivered with the payment's story."""
    receiver, _ = endpoint([])
    rids = [new_id("hung") for _ in range(2)]
    answers = []
    with HungBroker() as broker:
        web = gunicorn(site.logs.parent, env={**site.env, "CELERY_BROKER_URL": broker.url})
        try:
            token = web.token()
            for rid in rids:
                status, _, body = web.request(
                    "POST", "/api/v1/payments/", BODY, token=token, headers={"X-Request-ID": rid}
                )
                answers.append((status, json.loads(body)))
        finally:
            broker.__exit__()  # the publisher thread's read ends: the server stops at once
            web.stop()
    assert [status for status, _ in answers] == [201, 201], answers
    rid_of = {payment["id"]: rid for rid, (_, payment) in zip(rids, answers, strict=True)}
    site.wait_for(
        lambda: set(rid_of) <= {json.loads(c.body)["data"]["id"] for c in receiver.snapshot()},
        "both payments' webhooks, published by the sweep",
        timeout=60,
    )
    for call in receiver.snapshot():
        assert call.headers["X-Request-ID"] == rid_of[json.loads(call.body)["data"]["id"]]
    hung = [
        line
        for line in site.text("billing_api.log").splitlines()
        if "not published within 1.0 s (the broker hangs)" in line
    ]
    assert all(any(f"request_id={rid} " in line for line in hung) for rid in rids), hung


def test_a_card_in_a_tasks_arguments_or_exception_never_reaches_a_file(site):
    client = Celery("e2e-client", broker=site.redis.url)
    rid = new_id("card")
    result = client.send_task(
        "probe.fail",
        kwargs={"card": CARD},
        headers={"obs_request_id": rid},
        task_id=new_task_id(),  # Celery's own uuid4() reads as a card 0.7% of the time
    )
    site.wait_for(
        lambda: f"task_id={result.id} " in site.text("billing_api_errors.log"),
        "the failed line",
    )
    failed = [
        line
        for line in site.text("billing_api_errors.log").splitlines()
        if f"task_id={result.id} " in line
    ]
    assert any("Task probe.fail failed in" in line and "Traceback" in line for line in failed)
    assert all(f"request_id={rid} " in line for line in failed)
    assert CARD not in site.everything()
    client.close()


def test_a_task_whose_worker_process_is_killed_gets_its_failed_line_and_runs_again(site, tmp_path):
    client = Celery("e2e-client", broker=site.redis.url)
    rid = new_id("kill")
    result = client.send_task(
        "probe.hold",
        kwargs={"directory": str(tmp_path)},
        headers={"obs_request_id": rid},
        task_id=new_task_id(),
    )
    pid_file = site.wait_for(lambda: next(iter(tmp_path.glob("pid-*")), None), "the task")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    site.wait_for(
        lambda: any(
            f"task_id={result.id} " in line and "(lost)" in line
            for line in site.text("billing_api_errors.log").splitlines()
        ),
        "the failed line the parent writes",
    )
    lost = next(
        line
        for line in site.text("billing_api_errors.log").splitlines()
        if f"task_id={result.id} " in line and "(lost)" in line
    )
    assert f"request_id={rid} " in lost and "WorkerLostError" in lost
    (tmp_path / "release").write_text("")
    site.wait_for(
        lambda: any(
            f"task_id={result.id} " in line and "succeeded" in line
            for line in site.text("billing_api.log").splitlines()
        ),
        "the task run again (late acknowledgement)",
    )
    client.close()


def test_a_bad_broker_url_stops_start_up_with_a_sentence_naming_the_variable(tmp_path):
    env = server_env(tmp_path, CELERY_BROKER_URL="redis://:hunter2secret@127.0.0.1:port/0")
    for args in (
        [sys.executable, "manage.py", "check"],
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker"],
    ):
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        output = done.stdout + done.stderr
        assert done.returncode != 0
        assert "Environment variable CELERY_BROKER_URL must be a broker URL" in output, output
        assert "hunter2secret" not in output and "kombu" not in output


def test_concurrent_asgi_requests_each_carry_their_own_id_into_their_tasks(site, endpoint):
    """The embedded default under uvicorn (ASGI; sync views on threads): no broker."""
    receiver, secret = endpoint([])
    env = {**site.env, "CELERY_BROKER_URL": ""}
    web = uvicorn(site.logs.parent, env=env)
    try:
        token = web.token()

        def one(n: int) -> tuple[str, int]:
            rid = new_id(f"asgi-{n}")
            status, _, body = web.request(
                "POST", "/api/v1/payments/", BODY, token=token, headers={"X-Request-ID": rid}
            )
            assert status == 201, body
            return rid, json.loads(body)["id"]

        made = {payment: rid for rid, payment in web.many(12, 6, one)}
        site.wait_for(
            lambda: {json.loads(c.body)["data"]["id"] for c in receiver.snapshot()} >= set(made),
            "every payment's webhook",
        )
    finally:
        web.stop()
    for call in receiver.snapshot():
        payment = json.loads(call.body)["data"]["id"]
        if payment in made:
            assert call.headers["X-Request-ID"] == made[payment]
            assert verify(call.headers["Billing-Signature"], call.body, secret)
    assert "could not be run" not in site.text("billing_api_errors.log")
    for rid in made.values():
        lines = task_lines(site, rid)
        assert lines and all(f"request_id={rid} " in line for line in lines)


def test_sigterm_mid_task_finishes_it_and_writes_all_its_lines(site, tmp_path):
    """A warm shutdown: the worker stops taking tasks, finishes the running one, then exits."""
    queue = f"sigterm-{uuid.uuid4().hex[:8]}"
    worker = Worker({**site.env, "CELERY_QUEUE": queue}, tmp_path, beat=False, name=queue)
    client = Celery("e2e-client", broker=site.redis.url)
    try:
        site.wait_for(lambda: site.worker_ready(queue), "the second worker is ready", timeout=60)
        rid = new_id("term")
        result = client.send_task(
            "probe.hold",
            kwargs={"directory": str(tmp_path)},
            headers={"obs_request_id": rid},
            queue=queue,
            task_id=new_task_id(),  # never written as task_id=- (Celery's own: 0.7%)
        )
        site.wait_for(lambda: next(iter(tmp_path.glob("pid-*")), None), "the task")
        worker.proc.send_signal(signal.SIGTERM)
        (tmp_path / "release").write_text("")
        worker.proc.wait(60)
    finally:
        worker.stop()
        client.close()
    mine = [
        line
        for line in site.text("billing_api.log").splitlines()
        if f"task_id={result.id} " in line
    ]
    assert any("Task probe.hold started (attempt 1)" in line for line in mine)
    assert any("Task probe.hold succeeded in" in line for line in mine)
    assert all(f"request_id={rid} " in line for line in mine)


RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def test_smoke_the_same_payment_through_rabbitmq(site, endpoint, tmp_path):
    """The machine's RabbitMQ (a queue of this test's own): the same story as on Redis."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    receiver, secret = endpoint([])
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {**site.env, "CELERY_BROKER_URL": RABBITMQ, "CELERY_QUEUE": queue}
    worker = Worker(env, tmp_path, beat=False, name=queue)
    web = gunicorn(tmp_path, "--workers", "1", env=env)
    try:
        site.wait_for(lambda: site.worker_ready(queue), "the RabbitMQ worker is ready", timeout=60)
        rid = new_id("amqp")
        status, _, body = web.request(
            "POST", "/api/v1/payments/", BODY, token=web.token(), headers={"X-Request-ID": rid}
        )
        assert status == 201, body
        payment = json.loads(body)["id"]
        site.wait_for(
            lambda: any(json.loads(c.body)["data"]["id"] == payment for c in receiver.snapshot()),
            "the webhook through RabbitMQ",
        )
    finally:
        web.stop()
        worker.stop()
        with Connection(RABBITMQ) as connection:  # the shared server keeps no queue of ours
            connection.default_channel.queue_delete(queue)
    call = next(c for c in receiver.snapshot() if json.loads(c.body)["data"]["id"] == payment)
    assert call.headers["X-Request-ID"] == rid
    assert verify(call.headers["Billing-Signature"], call.body, secret)
    lines = task_lines(site, rid)
    assert any("Task billing.webhook_deliver succeeded" in line for line in lines), lines
