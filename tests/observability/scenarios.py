"""Every kind of line the product writes, from real requests and the layer's own helpers.

`write_every_kind_of_line(settings, user, staff)` runs them against the log files already
configured (any format): request lifecycle lines (started, completed, client errors, a
404 without a route, a slow request, a failure with its traceback), application records
(inside and outside a request, `request_context()`, a structured logger, SQL with DEBUG
on), billing events (a payment, a declined one, a refused refund), security events
(failed and successful logins, a 401, a 403, a refused `traceparent`), performance
metrics, a failed charge the reconciliation sweep settles later (a task), flood summaries,
and the trace viewer's and the admin's audit events. The JSON Schema test and the ECS field test validate every line.
"""

from __future__ import annotations

import logging

from django.core.management import call_command
from django.test import Client
from freezegun import freeze_time

from observability import StructuredLogger, log_performance_metric, request_context
from observability.guard.flood import guard
from tests import urls as test_urls
from tests.conftest import NOT_SLOW, slow_threshold, token_for

PAYMENTS = "/api/v1/payments/"


def _pay(client: Client, auth: dict[str, str], method: str, key: str | None = None):
    headers = dict(auth)
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(
        PAYMENTS,
        {"amount": "12.50", "currency": "USD", "payment_method": method},
        content_type="application/json",
        **headers,
    )


def requests_of_a_customer(user, settings) -> None:
    client = Client(REMOTE_ADDR="10.0.0.7", HTTP_USER_AGENT="curl/8.5.0")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    paid = _pay(client, auth, "pm_card_visa", key="order-1").json()["id"]
    _pay(client, auth, "pm_card_declined")
    client.post(
        f"{PAYMENTS}{paid}/refund/", {"amount": "99.00"}, content_type="application/json", **auth
    )
    client.post(
        f"{PAYMENTS}{paid}/refund/", {"amount": "2.50"}, content_type="application/json", **auth
    )
    client.get("/api/v1/reports/revenue/", **auth)
    client.get("/api/v1/reports/nonsense/", **auth)
    client.get(f"{PAYMENTS}?status=succeeded&limit=5", **auth)
    client.get("/api/v1/admin/stats/", **auth)  # a 403 for a customer
    client.get("/no/such/page/")  # a 404: no route
    client.get(PAYMENTS, HTTP_AUTHORIZATION="Bearer not-a-token")  # a 401
    client.get(PAYMENTS, HTTP_TRACEPARENT="00-4111111111111111aaaaaaaaaaaaaaaa-00f067aa0ba902b7-01")
    Client(raise_request_exception=False).get("/t/boom/")  # a 500 with its traceback
    with slow_threshold(settings, 1.0), freeze_time("2026-11-26 12:00:00") as freezer:
        test_urls.clock.update(freezer=freezer, advance=2.0)  # a slow request: 2 s on a 1 s bar
        try:
            client.get("/t/plain/")
        finally:
            test_urls.clock.update(freezer=None, advance=0.0)


def a_failed_charge_reconciled_by_the_sweep(user) -> None:
    """The gateway raises mid-request (a 500, the payment left pending); later the sweep
    (`manage.py payment_reconcile`, a task outside any request) settles it."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from billing import gateway
    from billing.models import Payment

    client = Client(raise_request_exception=False, REMOTE_ADDR="10.0.0.7")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    with mock.patch.object(gateway, "charge", side_effect=RuntimeError("gateway went away")):
        _pay(client, auth, "pm_card_visa", key="order-reconcile")
    Payment.objects.filter(status="pending").update(attempted_at=timezone.now() - timedelta(days=1))
    call_command("payment_reconcile", stdout=_Sink(), stderr=_Sink())


def logins(user) -> None:
    client = Client(REMOTE_ADDR="10.0.0.9")
    for password in ("wrong-1", "wrong-2", "s3cret-pass-123"):
        client.post(
            "/api/v1/auth/token/",
            {"username": user.username, "password": password},
            content_type="application/json",
        )


def application_records() -> None:
    logger = logging.getLogger("billing.views")
    logger.info("outside any request")
    logger.warning("with fields", extra={"order_id": 7, "ratio": 0.5, "flag": True, "note": None})
    with request_context(request_id="job-1", user_id=5):
        logger.info("in a background job")
        StructuredLogger("billing.services").info("structured", {"invoice": "inv-1", "lines": 3})
        try:
            raise RuntimeError("the ledger said no\n\x1b[31mred\u202e")
        except RuntimeError:
            logger.exception("a failure with its traceback")
    log_performance_metric(metric_name="batch_export", value=1.25, unit="seconds")
    call_command("test_logging", stdout=_Sink(), stderr=_Sink())


def a_flood_of_failed_logins(settings) -> None:
    """FLOOD_LIMIT + many failed logins from one address: a summary line with their count."""
    settings.OBSERVABILITY = {
        **NOT_SLOW,
        **getattr(settings, "OBSERVABILITY", {}),
        "FLOOD_LIMIT": 3,
    }
    client = Client(REMOTE_ADDR="198.51.100.4")
    for n in range(8):
        client.post(
            "/api/v1/auth/token/",
            {"username": f"guess{n}", "password": "x"},
            content_type="application/json",
        )
    guard.sweep(final=True)


def audited_views(staff) -> None:
    client = Client(REMOTE_ADDR="10.0.0.1")
    client.post("/admin/login/", {"username": staff.username, "password": "nope"})
    client.force_login(staff)
    client.get("/ops/requests/")
    client.get("/ops/requests/?user=john_doe&status=4xx")
    client.get("/ops/requests/some-id/")


def background_tasks(user) -> None:
    """A job publishes a task (its `published` line), which runs in the job's story
    (started, succeeded) and publishes one of its own; another fails; one is retried."""
    from celery import Celery
    from celery.exceptions import Retry

    from observability import request_context
    from observability.background.celery import install
    from observability.background.tasks import task_headers

    app = Celery("scenarios", broker="memory://", set_as_current=False)

    @app.task(name="scenario.deliver", shared=False)
    def deliver(**kwargs):
        if kwargs.get("again"):
            deliver.apply_async(task_id="5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a12")
        return "ok"

    @app.task(name="scenario.fail", shared=False)
    def fail(**kwargs):
        raise ValueError("the gateway said no")

    @app.task(bind=True, name="scenario.retry", shared=False)
    def again(self):
        raise Retry("gateway busy", ValueError("gateway busy"), 1.5)

    install(app)
    with request_context(user_id=user.pk, username=user.username):
        deliver.apply_async(task_id="5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a11")
        headers = task_headers()
    deliver.apply(
        kwargs={"again": True}, task_id="5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a11", headers=headers
    )
    fail.apply(task_id="5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a13", headers=headers)
    again.apply(task_id="5b2c9b1e-6c52-4e0a-9d0c-5a0d1f9e7a14", retries=1)


def write_every_kind_of_line(settings, user, staff) -> None:
    requests_of_a_customer(user, settings)
    background_tasks(user)
    a_failed_charge_reconciled_by_the_sweep(user)
    logins(user)
    application_records()
    audited_views(staff)
    a_flood_of_failed_logins(settings)


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
