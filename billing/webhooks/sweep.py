"""The sweep: publish every outbox row whose attempt is overdue, with its request's story.

A row is overdue when its next attempt was due a grace period ago (its own retry, queued
with a countdown, had its chance) or it was never published (the broker was down at commit,
the process died between commit and publish). Publishing twice is harmless: an attempt is
claimed once (billing.webhooks.delivery.claim). Run by beat (`make worker`), by the
embedded runner's thread, or by `manage.py webhook_sweep` from cron.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.models import WebhookOutbox


def overdue(limit: int = 500) -> list[WebhookOutbox]:
    grace = timedelta(seconds=settings.WEBHOOK_SWEEP_INTERVAL)
    return list(
        WebhookOutbox.objects.filter(
            status=WebhookOutbox.Status.PENDING, next_attempt_at__lte=timezone.now() - grace
        )
        .select_related("event")
        .order_by("next_attempt_at")[:limit]
    )
