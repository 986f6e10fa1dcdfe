"""The migrations that add the gateway key and the lease, run over existing payments."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("billing", "0002_request_id")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_existing_payments_get_their_own_gateway_key_and_are_reconcilable(user):
    """On PostgreSQL the rows' UPDATE and the unique ALTER must not share a transaction
    (`pending trigger events`): this failed there while they were one migration."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("billing")
    migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            for key in ("a", "b", "c"):
                cursor.execute(
                    "INSERT INTO billing_payment (user_id, amount, currency, description,"
                    " payment_method, status, failure_code, gateway_reference, amount_refunded,"
                    " idempotency_key, created_at, request_id) VALUES (%s, 5, 'USD', '',"
                    " 'pm_card_visa', 'pending', '', '', 0, %s, %s, '')",
                    [user.id, key, "2026-01-01 00:00:00+00:00"],
                )
    finally:
        migrate(latest)
    from billing.models import Payment

    payments = list(Payment.objects.order_by("id"))
    keys = {p.gateway_idempotency_key for p in payments}
    assert len(keys) == 3 and all(k.startswith("pay_") and len(k) == 36 for k in keys)
    assert all(p.attempted_at == p.created_at for p in payments)
    assert {p.request_hash for p in payments} == {""}
