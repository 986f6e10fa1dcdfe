"""Celery tasks of billing: deliver a webhook attempt, sweep the outbox.

The tasks hold no logging of their own: observability's Celery integration writes their
lifecycle lines (started, succeeded, failed, retried) with the originating request's ID.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from billing import background
from billing.webhooks.delivery import webhook_attempt
from billing.webhooks.outbox_context import originating_context
from billing.webhooks.sweep import overdue


@shared_task(  # type: ignore[untyped-decorator]
    bind=True, name="billing.webhook_deliver", acks_late=True, max_retries=None
)
def webhook_deliver(self: Any, outbox_id: int) -> str:
    """Deliver the next due attempt of one outbox row; retried with backoff on failure."""
    outcome = webhook_attempt(outbox_id=outbox_id, task_id=str(self.request.id or ""))
    if outcome.retry_in is not None:
        raise background.retry(self, delay=outcome.retry_in, reason=outcome.error)
    return outcome.outcome


@shared_task(name="billing.webhook_sweep", ignore_result=True)  # type: ignore[untyped-decorator]
def webhook_sweep() -> int:
    """Publish every overdue outbox row (beat runs it; so does the embedded runner)."""
    return publish_overdue()


def publish_overdue() -> int:
    """Publish the overdue rows, each in its originating request's story; how many."""
    rows = overdue()
    for row in rows:
        with originating_context(row.event):
            background.publish_now(webhook_deliver, kwargs={"outbox_id": row.pk})
    return len(rows)
