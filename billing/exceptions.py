"""Business-rule errors raised by the services; the API's exception handler renders them."""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    """A business rule refused the operation: `status` is the HTTP status the API answers."""

    status = 400
    code = "billing_error"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str, *, field: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.data = data


class InvalidRequest(BillingError):
    status = 400
    code = "invalid"


class Conflict(BillingError):
    status = 409
    code = "conflict"


class IdempotencyKeyInUse(Conflict):
    """Another request with this Idempotency-Key is still being processed: retry shortly."""

    code = "idempotency_key_in_use"
    retry_after = 1


class GatewayUnavailable(BillingError):
    """The gateway gave no answer: the payment stays pending until it is reconciled.

    `retry_after` is set per instance: the lease, after which a retry with the same
    Idempotency-Key asks the gateway what happened.
    """

    status = 503
    code = "gateway_unavailable"


class PaymentDeclined(BillingError):
    status = 402
    code = "payment_declined"


class UnknownReport(BillingError):
    """A report type the API does not know."""

    status = 404
    code = "not_found"
