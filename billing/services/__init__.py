"""Billing business rules: every write goes through a function here.

One module a job: subscriptions, payments (taking them; settling the ones a request left
pending), refunds; plans, the smallest, are written here so that their records keep this
package's logger name (README, "Configured loggers"). Callers use the names below:
`services.payment_create(...)`.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from billing.exceptions import Conflict
from billing.models import Plan
from billing.services.payments import payment_create
from billing.services.refunds import refund_create
from billing.services.settlement import Reconciliation, payment_reconcile
from billing.services.subscriptions import subscription_cancel, subscription_create

__all__ = [
    "Reconciliation",
    "payment_create",
    "payment_reconcile",
    "plan_create",
    "refund_create",
    "subscription_cancel",
    "subscription_create",
]

logger = logging.getLogger(__name__)


def plan_create(
    *, name: str, code: str, amount: Decimal, currency: str, interval: str, active: bool = True
) -> Plan:
    if Plan.objects.filter(code=code).exists():
        msg = f"A plan with code {code!r} already exists."
        raise Conflict(msg, field="code")
    plan = Plan.objects.create(
        name=name, code=code, amount=amount, currency=currency, interval=interval, active=active
    )
    logger.info("Plan %s created", plan.code, extra={"plan_id": plan.id})
    return plan
