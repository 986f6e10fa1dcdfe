"""python manage.py webhook_sweep: publish every overdue webhook delivery (for cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from billing.tasks import publish_overdue
from observability import request_context


class Command(BaseCommand):
    help = (
        "Publish every webhook outbox row whose attempt is overdue (never published, or its "
        "retry lost), each with its originating request's ID and trace. Safe to run at any "
        "time and concurrently: each attempt is claimed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with request_context(job="webhook_sweep"):
            published = publish_overdue()
        self.stdout.write(f"webhook_sweep: {published} overdue deliveries published")
