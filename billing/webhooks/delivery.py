"""One delivery attempt of an event to an endpoint, claimed so that it is sent once.

A task may run twice (Redis redelivers a task unacknowledged past its visibility timeout;
the sweep publishes a row whose retry is also queued). The attempt is claimed first by a
compare-and-set on the outbox row (its `attempts` and `next_attempt_at`): one run wins, the
others find nothing due and return. The attempt is recorded (WebhookDelivery, unique by
row and attempt) whatever the answer; a failure sets the next attempt's time by exponential
backoff with jitter, until WEBHOOK_MAX_ATTEMPTS.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from billing.models import WebhookDelivery, WebhookOutbox
from billing.webhooks.addresses import UnsafeURL, check_url
from billing.webhooks.signing import SIGNATURE_HEADER, sign
from observability import get_redactor, get_request_id, outgoing_headers

logger = logging.getLogger(__name__)
#: Added to a retry's countdown: its timer fires after the row's next attempt is due, never
#: before (a run that finds its row not yet due sends nothing; the backoff holds).
RETRY_MARGIN = 0.05
ERROR_LIMIT = 300


@dataclass(frozen=True)
class Outcome:
    """What an attempt did: `retry_in` seconds until the next one when it failed."""

    outcome: str  # "delivered" | "retry" | "gave_up" | "skipped"
    attempt: int = 0
    retry_in: float | None = None
    error: str = ""


def backoff(attempt: int) -> float:
    """Seconds after failed attempt `attempt` (1, 2 ...): base x 2^(n-1), capped, +0-25%."""
    base, cap = float(settings.WEBHOOK_BACKOFF_BASE), float(settings.WEBHOOK_BACKOFF_MAX)
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return delay * (1 + random.uniform(0, 0.25))  # noqa: S311 - jitter, not a secret


def claim(outbox_id: int) -> tuple[WebhookOutbox, int] | None:
    """Take the next attempt of a due row; None when it is not due, done, or taken."""
    now = timezone.now()
    row = WebhookOutbox.objects.filter(pk=outbox_id).select_related("event", "endpoint").first()
    if row is None or row.status != WebhookOutbox.Status.PENDING:
        return None
    if row.next_attempt_at > now:
        return None
    lease = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    taken = WebhookOutbox.objects.filter(
        pk=row.pk, status=WebhookOutbox.Status.PENDING, attempts=row.attempts
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + lease)
    if taken != 1:
        return None
    return row, row.attempts + 1


def body_of(row: WebhookOutbox) -> bytes:
    event = row.event
    document = {
        "id": event.event_id,
        "type": event.type,
        "created": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def error_text(exc: BaseException, prefix: str) -> str:
    """An exception as a delivery's error: masked whole (a URL may hold anything), then cut."""
    return get_redactor().text(f"{prefix}{exc}", ERROR_LIMIT)


def _send(row: WebhookOutbox, attempt: int) -> tuple[int | None, str]:
    """POST the event; (status code, "") or (None or the code, a short error)."""
    endpoint = row.endpoint
    body = body_of(row)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "billing-api-webhooks/1",
        "Billing-Event-Id": row.event.event_id,
        "Billing-Event-Type": row.event.type,
        "Billing-Attempt": str(attempt),
        SIGNATURE_HEADER: sign(body, (endpoint.secret, endpoint.previous_secret)),
        **outgoing_headers(),  # the task's request ID and a child span of its trace
    }
    try:
        check_url(endpoint.url)
        response = requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT,
            allow_redirects=False,
        )
    except UnsafeURL as exc:
        return None, error_text(exc, "refused: ")
    except requests.Timeout:
        return None, f"timeout after {settings.WEBHOOK_TIMEOUT:g} s"
    except requests.RequestException as exc:
        return None, error_text(exc, f"{type(exc).__name__}: ")
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def webhook_attempt(*, outbox_id: int, task_id: str = "") -> Outcome:
    """Claim, send and record the next attempt of an outbox row."""
    claimed = claim(outbox_id)
    if claimed is None:
        logger.info("Webhook outbox %s: nothing due (delivered, taken or not yet due)", outbox_id)
        return Outcome("skipped")
    row, attempt = claimed
    started = time.monotonic()
    status_code, error = _send(row, attempt)
    duration = round(time.monotonic() - started, 6)
    request_id = get_request_id()
    try:
        WebhookDelivery.objects.create(
            outbox=row,
            attempt=attempt,
            status_code=status_code,
            duration=duration,
            error=error,
            request_id="" if request_id in (None, "-") else request_id,
            task_id=task_id if len(task_id) <= 64 else "",
        )
    except IntegrityError:  # the endpoint (and its outbox rows) was deleted meanwhile
        logger.info("Webhook outbox %s: its endpoint was removed during the attempt", outbox_id)
        return Outcome("skipped", attempt)
    fields = {
        "event_id": row.event.event_id,
        "webhook_event_type": row.event.type,
        "endpoint_id": row.endpoint_id,
        "attempt": attempt,
        "status_code": status_code if status_code is not None else "-",
        "webhook_duration": duration,
    }
    if not error:
        WebhookOutbox.objects.filter(pk=row.pk).update(status=WebhookOutbox.Status.DELIVERED)
        logger.info("Webhook %s delivered (attempt %s)", row.event.event_id, attempt, extra=fields)
        return Outcome("delivered", attempt)
    if attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        WebhookOutbox.objects.filter(pk=row.pk).update(status=WebhookOutbox.Status.FAILED)
        logger.error(
            "Webhook %s not delivered: attempt %s of %s failed (%s); giving up",
            row.event.event_id,
            attempt,
            settings.WEBHOOK_MAX_ATTEMPTS,
            error,
            extra=fields,
        )
        return Outcome("gave_up", attempt, error=error)
    delay = backoff(attempt)
    WebhookOutbox.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )
    logger.warning(
        "Webhook %s attempt %s failed (%s); next in %.1f s",
        row.event.event_id,
        attempt,
        error,
        delay,
        extra=fields,
    )
    return Outcome("retry", attempt, retry_in=delay + RETRY_MARGIN, error=error)
