"""Taking a payment: exactly one charge per Idempotency-Key, whatever the concurrency."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from billing import gateway, selectors
from billing.exceptions import Conflict, IdempotencyKeyInUse, PaymentDeclined
from billing.logging_utils import log_billing_event, log_performance_metric
from billing.models import Payment
from billing.services.request_hash import (
    PAYMENT_BODY_FIELDS,
    PaymentBody,
    payment_request_hash,
    payment_stored_hash,
)
from billing.services.request_ids import current_request_id
from billing.services.settlement import (
    payment_gateway_unavailable,
    payment_reconcile,
    payment_settle,
    payment_settled_log,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User  # AUTH_USER_MODEL, as django-stubs reads it


def _payment_replay(existing: Payment, *, request_hash: str, body: PaymentBody) -> Payment:
    """Answer a request whose Idempotency-Key already has a payment: replay it, or refuse.

    Another body under the key: 409 naming the key (and the fields that differ, never their
    values). Replayed: the same payment (200), or the same decline (402). Still pending while
    its request holds the lease: 409 with Retry-After, never a second charge; pending past
    the lease: reconciled with the gateway here, then replayed.
    """
    if payment_stored_hash(existing) != request_hash:
        differing = [
            name for name in PAYMENT_BODY_FIELDS if getattr(existing, name) != body.get(name)
        ]
        which = f" ({', '.join(differing)} differ)" if differing else ""
        msg = (
            f"This Idempotency-Key was already used with a different request body{which}; "
            "send a new key for a new payment."
        )
        raise Conflict(msg, field="Idempotency-Key")
    details = {"payment_id": existing.id, "winning_request_id": existing.request_id or None}
    stale = existing.attempted_at <= selectors.payment_lease_cutoff()
    if existing.status == Payment.Status.PENDING and stale:
        try:
            existing = payment_reconcile(payment=existing, trigger="retry").payment
        except gateway.GatewayError as error:
            raise payment_gateway_unavailable(existing, error) from None
    if existing.status == Payment.Status.PENDING:
        log_billing_event(
            event_type="payment_in_flight_refused", user_id=existing.user_id, details=details
        )
        msg = (
            f"A request with this Idempotency-Key is still being processed (payment "
            f"{existing.id}); retry it shortly to get its result."
        )
        raise IdempotencyKeyInUse(msg, field="Idempotency-Key")
    log_billing_event(event_type="payment_replayed", user_id=existing.user_id, details=details)
    if existing.status == Payment.Status.FAILED:
        raise PaymentDeclined(
            gateway.failure_message(existing.failure_code),
            data={"payment": existing, "replayed": True},
        )
    return existing


def payment_create(
    *,
    user: User,
    amount: Decimal,
    currency: str,
    payment_method: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> tuple[Payment, bool]:
    """Charge the user; return (payment, created). A known idempotency key replays the original.

    Exactly one charge per key, whatever the concurrency and whoever dies: the payment is
    committed as pending before the gateway is called, and the unique (user, idempotency_key)
    constraint lets one INSERT win. Every other request finds that row and replays, refuses
    or (past the lease of a request that never answered) reconciles it with the gateway.
    The gateway is always called with the payment's own key, so it charges at most once.
    Call it outside any transaction: the pending row must be committed before the charge.
    """
    key = idempotency_key or None
    body: PaymentBody = {
        "amount": amount,
        "currency": currency,
        "description": description,
        "payment_method": payment_method,
    }
    request_hash = payment_request_hash(**body)
    if key:
        existing = Payment.objects.filter(user=user, idempotency_key=key).first()
        if existing is not None:
            return _payment_replay(existing, request_hash=request_hash, body=body), False
    started = time.monotonic()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                **body,
                idempotency_key=key,
                request_hash=request_hash,
                request_id=current_request_id(),
            )
    except IntegrityError:
        if key is None:
            raise
        # A concurrent request with the same key inserted first (the constraint made this
        # INSERT wait for its commit): its row is there now.
        existing = Payment.objects.get(user=user, idempotency_key=key)
        return _payment_replay(existing, request_hash=request_hash, body=body), False
    log_billing_event(
        event_type="payment_created",
        user_id=user.id,
        details={"payment_id": payment.id, "amount": str(amount), "currency": currency},
    )
    try:
        result = gateway.charge(
            idempotency_key=payment.gateway_idempotency_key,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
        )
    except gateway.GatewayError as error:
        raise payment_gateway_unavailable(payment, error) from None
    settled_here = payment_settle(payment, result)
    log_performance_metric(
        metric_name="payment_processing",
        value=round(time.monotonic() - started, 6),
        unit="seconds",
        details={"payment_id": payment.id, "payment_status": payment.status},
    )
    if settled_here:  # else a retry past the lease reconciled it (the same charge) and logged
        payment_settled_log(payment)
    if payment.status == Payment.Status.FAILED:
        raise PaymentDeclined(
            gateway.failure_message(payment.failure_code), data={"payment": payment}
        )
    return payment, True
