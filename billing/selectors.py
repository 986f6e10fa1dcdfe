"""Billing reads: querysets scoped to their owner, and reports."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from billing.exceptions import UnknownReport
from billing.logging_utils import log_performance_metric
from billing.models import Payment, Plan, Refund, Subscription

if TYPE_CHECKING:
    from django.contrib.auth.models import User  # AUTH_USER_MODEL, as django-stubs reads it

REPORT_TYPES = ("revenue", "subscriptions", "payments")


def plan_list(*, include_inactive: bool = False) -> QuerySet[Plan]:
    plans = Plan.objects.all()
    return plans if include_inactive else plans.filter(active=True)


def subscription_list(*, user: User) -> QuerySet[Subscription]:
    return Subscription.objects.filter(user=user).select_related("plan")


def payment_list(*, user: User) -> QuerySet[Payment]:
    return Payment.objects.filter(user=user)


def payment_lease_cutoff() -> datetime:
    """A pending payment last attempted at or before this instant has lost its request's lease."""
    return timezone.now() - timedelta(seconds=settings.BILLING_PENDING_LEASE)


def payment_stale_list() -> QuerySet[Payment]:
    """Pending payments whose lease ran out, oldest first: the sweep's work."""
    return Payment.objects.filter(
        status=Payment.Status.PENDING, attempted_at__lte=payment_lease_cutoff()
    ).order_by("attempted_at", "id")


def _revenue(user: User) -> dict[str, Any]:
    rows = (
        Payment.objects.filter(user=user, status=Payment.Status.SUCCEEDED)
        .values("currency")
        .annotate(gross=Sum("amount"), refunded=Sum("amount_refunded"), count=Count("id"))
        .order_by("currency")
    )
    cents = Decimal("0.01")

    def money(value: Decimal | None) -> Decimal:
        return Decimal(value or 0).quantize(cents)  # SQLite sums decimals with extra digits

    return {
        "currencies": [
            {
                "currency": row["currency"],
                "payments": row["count"],
                "gross": str(money(row["gross"])),
                "refunded": str(money(row["refunded"])),
                "net": str(money(row["gross"]) - money(row["refunded"])),
            }
            for row in rows
        ]
    }


def _counts(queryset: QuerySet[Subscription] | QuerySet[Payment]) -> dict[str, Any]:
    counts = dict(queryset.values_list("status").annotate(n=Count("id")).order_by())
    return {"total": sum(counts.values()), "by_status": counts}


def report_generate(*, user: User, report_type: str) -> dict[str, Any]:
    if report_type not in REPORT_TYPES:
        msg = f"Unknown report type {report_type!r}; choose one of {', '.join(REPORT_TYPES)}."
        raise UnknownReport(msg, field="report_type")
    started = time.monotonic()
    if report_type == "revenue":
        data = _revenue(user)
    elif report_type == "subscriptions":
        data = _counts(Subscription.objects.filter(user=user))
    else:
        data = _counts(Payment.objects.filter(user=user))
    log_performance_metric(
        metric_name="report_generation",
        value=round(time.monotonic() - started, 6),
        unit="seconds",
        details={"report_type": report_type},
    )
    return {"report_type": report_type, **data}


def admin_stats() -> dict[str, Any]:
    succeeded = Payment.objects.filter(status=Payment.Status.SUCCEEDED)
    return {
        "users": get_user_model().objects.count(),
        "plans": Plan.objects.count(),
        "active_subscriptions": Subscription.objects.filter(status="active").count(),
        "payments": _counts(Payment.objects.all()),
        "refunds": Refund.objects.count(),
        "gross_succeeded": str(
            Decimal(succeeded.aggregate(s=Sum("amount"))["s"] or 0).quantize(Decimal("0.01"))
        ),
    }
