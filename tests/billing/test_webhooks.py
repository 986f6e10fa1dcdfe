"""Webhooks: the outbox written with its change, signed deliveries, one send per attempt,
backoff, refused private URLs, the staff API. Deliveries go to a real local HTTP server."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.db import transaction

from billing import services
from billing.models import WebhookDelivery, WebhookEndpoint, WebhookEvent, WebhookOutbox
from billing.webhooks.addresses import UnsafeURL, check_url
from billing.webhooks.delivery import backoff, webhook_attempt
from billing.webhooks.events import event_record
from billing.webhooks.signing import sign, verify
from tests.e2e.receiver import Receiver

PAY = {"amount": Decimal("12.00"), "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture
def local(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.WEBHOOK_BACKOFF_BASE = 2.0
    settings.WEBHOOK_BACKOFF_MAX = 60.0
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    return settings


def test_signature_verifies_with_each_secret_of_a_rotation_and_refuses_tampering():
    body = b'{"id":"evt_1"}'
    header = sign(body, ("whsec_new", "whsec_old"))
    assert header.startswith("t=") and header.count("v1=") == 2
    assert verify(header, body, "whsec_new") and verify(header, body, "whsec_old")
    assert not verify(header, body, "whsec_other")
    assert not verify(header, body + b" ", "whsec_new")
    stale = sign(body, ("whsec_new",), timestamp=int(time.time()) - 301)
    assert not verify(stale, body, "whsec_new")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
    ],
)
def test_urls_that_reach_inside_are_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeURL):
        check_url(url)


def test_a_public_address_is_allowed_and_the_setting_allows_private_ones(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    check_url("https://93.184.216.34/hook")
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    check_url("http://127.0.0.1:9/hook")


def test_staff_api_refuses_a_loopback_url_naming_the_field(client_for, staff, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = client_for(staff).post(
        "/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:6379/"}, format="json"
    )
    assert response.status_code == 400
    assert "url" in json.dumps(response.json())
    assert not WebhookEndpoint.objects.exists()


def test_staff_api_creates_an_endpoint_and_shows_its_secret_once(client_for, staff, local):
    client = client_for(staff)
    made = client.post(
        "/api/v1/webhooks/endpoints/",
        {"url": "http://127.0.0.1:9/hook", "event_types": ["payment.succeeded"]},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks/endpoints/").json()
    assert "secret" not in json.dumps(listed)
    bad = client.post(
        "/api/v1/webhooks/endpoints/",
        {"url": "http://127.0.0.1:9/", "event_types": ["payment.nope"]},
        format="json",
    )
    assert bad.status_code == 400 and "event_types" in json.dumps(bad.json())


def test_a_non_staff_user_may_not_manage_endpoints(api):
    assert api.get("/api/v1/webhooks/endpoints/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_event_is_written_in_the_transaction_of_its_change_or_not_at_all(local):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook")

    def change_that_fails() -> None:
        with transaction.atomic():
            event_record(event_type="payment.succeeded", data={"id": 1})
            raise ZeroDivisionError  # the change fails after its event was written

    with pytest.raises(ZeroDivisionError):
        change_that_fails()
    assert not WebhookEvent.objects.exists() and not WebhookOutbox.objects.exists()
    with pytest.raises(RuntimeError, match="must run in the transaction of its change"):
        event_record(event_type="payment.succeeded", data={"id": 1})


def test_a_payment_writes_its_event_and_one_outbox_row_per_endpoint_that_wants_it(user, local):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/a")
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/b", event_types=["refund.created"])
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/c", active=False)
    payment, _ = services.payment_create(user=user, **PAY)
    event = WebhookEvent.objects.get()
    assert (event.type, event.payload["id"]) == ("payment.succeeded", payment.id)
    assert [row.endpoint.url for row in event.outbox.all()] == ["http://127.0.0.1:9/a"]


def _pending_row(url: str) -> WebhookOutbox:
    endpoint = WebhookEndpoint.objects.create(url=url)
    with transaction.atomic():
        event_record(event_type="payment.succeeded", data={"id": 7})
    return WebhookOutbox.objects.get(endpoint=endpoint)


@pytest.mark.django_db
def test_an_attempt_is_sent_once_however_often_its_task_runs(local):
    with Receiver() as receiver:
        row = _pending_row(receiver.url)
        first = webhook_attempt(outbox_id=row.pk)
        again = webhook_attempt(outbox_id=row.pk)
        assert (first.outcome, again.outcome) == ("delivered", "skipped")
        assert len(receiver.snapshot()) == 1
        call = receiver.snapshot()[0]
    endpoint = row.endpoint
    assert call.headers["Billing-Event-Id"] == row.event.event_id
    assert verify(call.headers["Billing-Signature"], call.body, endpoint.secret)
    assert json.loads(call.body)["id"] == row.event.event_id
    assert list(WebhookDelivery.objects.values_list("attempt", "status_code")) == [(1, 200)]


@pytest.mark.django_db
def test_a_failed_attempt_waits_its_backoff_and_the_last_one_gives_up(local):
    with Receiver(["500", "503", "500"]) as receiver:
        row = _pending_row(receiver.url)
        first = webhook_attempt(outbox_id=row.pk)
        assert first.outcome == "retry" and first.retry_in >= 2.0
        assert webhook_attempt(outbox_id=row.pk).outcome == "skipped"  # not due yet
        for _ in range(2):
            WebhookOutbox.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
            last = webhook_attempt(outbox_id=row.pk)
        assert len(receiver.snapshot()) == 3
    assert last.outcome == "gave_up"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 3)
    assert list(WebhookDelivery.objects.values_list("attempt", "error")) == [
        (1, "HTTP 500"),
        (2, "HTTP 503"),
        (3, "HTTP 500"),
    ]


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter_on_top(settings):
    settings.WEBHOOK_BACKOFF_BASE = 1.0
    settings.WEBHOOK_BACKOFF_MAX = 5.0
    for attempt, floor in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        delay = backoff(attempt)
        assert floor <= delay <= floor * 1.25


def test_the_admin_form_refuses_a_private_url_and_an_unknown_event_type(settings):
    from billing.admin import WebhookEndpointForm

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    form = WebhookEndpointForm(
        data={"url": "http://10.0.0.1/", "event_types": '["payment.nope"]', "secret": "s"}
    )
    assert not form.is_valid()
    assert set(form.errors) >= {"url", "event_types"}
