"""Write an event in the caller's transaction (the outbox) and publish it once committed.

    with transaction.atomic():
        payment.save(...)
        event_record(event_type="payment.succeeded", data={...})

A rolled-back transaction takes its event with it; a committed one has its outbox rows,
which the sweep publishes if the publication after commit never happens (a broker down,
a process killed between the commit and the publish).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from billing.models import WebhookEndpoint, WebhookEvent, WebhookOutbox
from observability import get_request_id, outgoing_headers

EMPTY = "-"


def event_record(*, event_type: str, data: dict[str, Any]) -> WebhookEvent:
    """The event and one outbox row per active endpoint that wants it; published on commit.

    Must run inside the transaction of the change it reports (it says so if not).
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        msg = f"event_record({event_type!r}) must run in the transaction of its change"
        raise RuntimeError(msg)
    request_id = get_request_id()
    event = WebhookEvent.objects.create(
        type=event_type,
        payload=data,
        request_id="" if request_id == EMPTY else (request_id or ""),
        # A child span of the request's: the deliveries are its children, however late.
        traceparent=outgoing_headers().get("traceparent", ""),
    )
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event_type)]
    rows = WebhookOutbox.objects.bulk_create(
        WebhookOutbox(event=event, endpoint=endpoint) for endpoint in endpoints
    )
    if rows:
        ids = [row.pk for row in rows] if all(row.pk for row in rows) else None
        transaction.on_commit(lambda: _publish(event, ids))
    return event


def _publish(event: WebhookEvent, ids: list[int] | None) -> None:
    from billing import background
    from billing.tasks import webhook_deliver

    if ids is None:  # a database that does not return bulk-created keys
        ids = list(WebhookOutbox.objects.filter(event=event).values_list("pk", flat=True))
    for outbox_id in ids:
        background.publish(webhook_deliver, kwargs={"outbox_id": outbox_id})
