"""Each of the five events, made through the API: written to the outbox in the transaction of
its change, with the request ID of the request that made it; a change rolled back leaves no
event. The events are written in the test's transaction, so nothing is published here."""

from __future__ import annotations

import contextlib
import heapq
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from billing.embedded import EmbeddedRunner, Job
from billing.models import (
    Payment,
    Refund,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookOutbox,
)
from tests.e2e.receiver import Receiver
from tests.polling import DEADLINE, wait_for

PAY = {"amount": "12.00", "currency": "USD", "payment_method": "pm_card_visa"}


def _pay(api, **changes: str) -> Any:
    return api.post("/api/v1/payments/", {**PAY, **changes}, format="json")


def _decline(api, plan) -> Any:
    return _pay(api, payment_method="pm_card_declined")


def _refund(api, plan) -> Any:
    payment = _pay(api).json()
    return api.post(f"/api/v1/payments/{payment['id']}/refund/", {}, format="json")


def _subscribe(api, plan) -> Any:
    return api.post("/api/v1/subscriptions/", {"plan": plan.code}, format="json")


def _cancel(api, plan) -> Any:
    subscription = _subscribe(api, plan).json()
    return api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel/")


#: event type -> (the request that makes it, its answer's status, the service module that
#: writes the event).
CHANGES: dict[str, tuple[Callable[[Any, Any], Any], int, str]] = {
    "payment.succeeded": (lambda api, plan: _pay(api), 201, "settlement"),
    "payment.failed": (_decline, 402, "settlement"),
    "refund.created": (_refund, 201, "refunds"),
    "subscription.created": (_subscribe, 201, "subscriptions"),
    "subscription.canceled": (_cancel, 200, "subscriptions"),
}


@pytest.fixture
def endpoint(db) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook")  # every event type


@pytest.mark.parametrize("event_type", list(CHANGES))
def test_each_event_is_in_the_outbox_with_the_request_id_of_its_request(
    api, plan, endpoint, event_type
):
    make, status, _ = CHANGES[event_type]
    response = make(api, plan)
    assert response.status_code == status, response.content
    event = WebhookEvent.objects.get(type=event_type)
    assert event.request_id and event.request_id == response["X-Request-ID"]
    assert event.traceparent.startswith("00-")
    assert [row.endpoint for row in event.outbox.all()] == [endpoint]
    body = response.json()
    assert event.payload["id"] == (body.get("id") or body["error"]["payment"]["id"])


class Refused(Exception):
    """Raised right after the event is written, inside the change's transaction."""


@pytest.mark.parametrize("event_type", list(CHANGES))
def test_a_change_rolled_back_after_its_event_was_written_leaves_neither(
    api, plan, endpoint, monkeypatch, event_type
):
    """The event is written, then the change fails: the change and the event go together."""
    import importlib

    from billing.webhooks.events import event_record

    make, _, module = CHANGES[event_type]
    written: list[str] = []

    def record_then_fail(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
        event = event_record(event_type=event_type, data=data)
        written.append(event_type)
        if event_type == wanted:
            assert WebhookEvent.objects.filter(pk=event.pk).exists()
            raise Refused
        return event

    wanted = event_type
    monkeypatch.setattr(
        importlib.import_module(f"billing.services.{module}"), "event_record", record_then_fail
    )
    with pytest.raises(Refused):
        make(api, plan)
    assert written[-1] == event_type
    assert not WebhookEvent.objects.filter(type=event_type).exists()
    # ... and the change is gone with it.
    if event_type.startswith("payment."):
        assert list(Payment.objects.values_list("status", flat=True)) == ["pending"]
    elif event_type == "refund.created":
        assert not Refund.objects.exists()
        assert Payment.objects.get().amount_refunded == 0
    elif event_type == "subscription.created":
        assert not Subscription.objects.exists()
    else:
        assert Subscription.objects.get().status == Subscription.Status.ACTIVE


class _Stop(Exception):
    """Ends the test's runner thread (raised where it waits for its next job)."""


class OneTestRunner(EmbeddedRunner):
    """The embedded runner (billing.embedded), real, for one test: no sweep of its own (the
    test runs the sweep it means to), each job held at `gate` until the test opens it, its
    database connection closed after each job, and stopped when the test ends."""

    STOP = "tests.stop"

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = time.monotonic() + 24 * 3600
        self.gate = threading.Event()

    def _next(self) -> Job | None:
        job = super()._next()
        if job is not None and job.name == self.STOP:
            raise _Stop
        return job

    def _loop(self) -> None:
        with contextlib.suppress(_Stop):
            super()._loop()

    def _run(self, job: Job) -> None:
        assert self.gate.wait(DEADLINE), "the test never opened the gate"
        try:
            super()._run(job)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.gate.set()
        if self._thread is None:
            return
        with self._cond:
            heapq.heappush(self._jobs, Job(0.0, -2, self.STOP, {}, {}, "stop"))
            self._cond.notify()
        self._thread.join(DEADLINE)


class TaskRecords(logging.Handler):
    """The records of TASK_LOGGER (billing.tasks), as written, in the thread that wrote them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, task: str, event: str) -> list[logging.LogRecord]:
        return [
            r
            for r in list(self.records)
            if getattr(r, "task_event", None) == event and task in r.getMessage()
        ]


@pytest.fixture
def runner(transactional_db, monkeypatch, settings) -> Iterator[OneTestRunner]:
    """No broker (the test settings' default): tasks go to this test's embedded runner."""
    from billing import background

    assert settings.BACKGROUND_EMBEDDED
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver listens on 127.0.0.1
    settings.WEBHOOK_TIMEOUT = 5.0
    one = OneTestRunner()
    monkeypatch.setattr(background, "runner", one)
    try:
        yield one
    finally:
        one.stop()


@pytest.fixture
def task_records() -> Iterator[TaskRecords]:
    handler = TaskRecords()
    logger = logging.getLogger("billing.tasks")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _outbox_row(endpoint: WebhookEndpoint, request_id: str, due: timedelta) -> WebhookOutbox:
    """An outbox row never published (the broker was down at commit), due at now + `due`."""
    event = WebhookEvent.objects.create(
        type="payment.succeeded", payload={"id": 1}, request_id=request_id
    )
    return WebhookOutbox.objects.create(
        event=event, endpoint=endpoint, next_attempt_at=timezone.now() + due
    )


def test_the_sweep_command_sends_the_overdue_deliveries_and_leaves_the_others(runner, task_records):
    runner.gate.set()
    with Receiver() as receiver:
        endpoint = WebhookEndpoint.objects.create(url=receiver.url)
        overdue = _outbox_row(endpoint, "req-overdue", -timedelta(minutes=5))
        later = _outbox_row(endpoint, "req-later", timedelta(minutes=5))
        just_made = _outbox_row(endpoint, "req-just-made", timedelta(0))  # its own publish
        out = io.StringIO()
        call_command("webhook_sweep", stdout=out)
        assert out.getvalue().strip() == "webhook_sweep: 1 overdue deliveries published"
        wait_for(
            lambda: task_records.of("billing.webhook_deliver", "succeeded"),
            "the overdue delivery's task succeeded",
        )
        calls = receiver.snapshot()
    assert [call.headers["Billing-Event-Id"] for call in calls] == [overdue.event.event_id]
    assert calls[0].headers["X-Request-ID"] == "req-overdue"  # its request's, not the sweep's
    states = {row.pk: (row.status, row.attempts) for row in WebhookOutbox.objects.all()}
    assert states == {
        overdue.pk: ("delivered", 1),
        later.pk: ("pending", 0),
        just_made.pk: ("pending", 0),
    }
    assert list(WebhookDelivery.objects.values_list("outbox", "status_code")) == [(overdue.pk, 200)]


def test_with_no_broker_a_task_published_in_a_request_runs_on_the_runners_thread(
    runner, task_records, user, client_for
):
    with Receiver() as receiver:
        WebhookEndpoint.objects.create(url=receiver.url)
        response = _pay(client_for(user))
        assert response.status_code == 201, response.content
        # The request has answered; its task is queued, held at the gate, not yet run.
        assert receiver.snapshot() == []
        row = WebhookOutbox.objects.get()
        assert (row.status, row.attempts) == ("pending", 0)
        runner.gate.set()
        wait_for(
            lambda: task_records.of("billing.webhook_deliver", "succeeded"),
            "the delivery task succeeded",
        )
        calls = receiver.snapshot()
    request_thread = threading.current_thread().name
    published = task_records.of("billing.webhook_deliver", "published")
    started = task_records.of("billing.webhook_deliver", "started")
    succeeded = task_records.of("billing.webhook_deliver", "succeeded")
    assert [r.threadName for r in published] == [request_thread]
    assert [r.threadName for r in started + succeeded] == ["tasks", "tasks"] != [request_thread] * 2
    assert [call.headers["X-Request-ID"] for call in calls] == [response["X-Request-ID"]]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status_code, delivery.request_id) == (200, response["X-Request-ID"])


def test_the_runner_gives_each_task_an_id_that_never_reads_as_a_card_number(
    runner, task_records, user, client_for, monkeypatch
):
    """The runner takes its task IDs from observability's new_task_id() (a plain uuid4()
    reads as a card number 0.7% of the time, and such an ID is never written)."""
    from billing import embedded

    monkeypatch.setattr(embedded, "new_task_id", lambda: "task-from-new-task-id")
    with Receiver() as receiver:
        WebhookEndpoint.objects.create(url=receiver.url)
        assert _pay(client_for(user)).status_code == 201
        runner.gate.set()
        wait_for(
            lambda: task_records.of("billing.webhook_deliver", "succeeded"),
            "the delivery task succeeded",
        )
    (published,) = task_records.of("billing.webhook_deliver", "published")
    assert published.published_task_id == "task-from-new-task-id"
    started = task_records.of("billing.webhook_deliver", "started")
    assert [record.task_id for record in started] == ["task-from-new-task-id"]
