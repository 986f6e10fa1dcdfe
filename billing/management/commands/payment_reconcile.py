"""Settle the pending payments whose request never answered, without waiting for a retry."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing import gateway, selectors, services
from billing.models import Payment

HOW = {"had_charged": "the gateway had charged it", "charged_now": "charged now"}


def _count(n: int) -> str:
    return f"{n} stale pending payment{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Reconcile pending payments whose lease (BILLING_PENDING_LEASE) ran out: ask the "
        "gateway whether each was charged, record that charge or make it now (once, under "
        "the payment's own gateway key), and log a payment_reconciled event for each. "
        "Payments still within their lease are left to their request. Run it from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the stale pending payments; change nothing and call no gateway.",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="Reconcile at most this many payments (the oldest first); default: all.",
        )

    def handle(self, *args: Any, dry_run: bool, limit: int | None, **options: Any) -> None:
        if limit is not None and limit < 1:
            msg = f"--limit must be an integer >= 1, got {limit}"
            raise CommandError(msg)
        stale = list(selectors.payment_stale_list()[:limit])
        if dry_run:
            for payment in stale:
                self.stdout.write(
                    f"payment {payment.id}: pending since {payment.attempted_at.isoformat()}, "
                    "would be reconciled"
                )
            self.stdout.write(f"{_count(len(stale))} (dry run: none reconciled)")
            return
        failed: list[int] = []  # the gateway did not answer
        left = 0  # still pending: another request holds it now
        for payment in stale:
            try:
                done = services.payment_reconcile(payment=payment, trigger="sweep")
            except gateway.GatewayError as error:
                failed.append(payment.id)
                self.stdout.write(f"payment {payment.id}: still pending ({error})")
                continue
            if done.payment.status == Payment.Status.PENDING:
                left += 1
            self.stdout.write(f"payment {payment.id}: {self._outcome(done)}")
        if failed:
            msg = (
                f"{_count(len(failed))} could not be reconciled: "
                f"{', '.join(str(pk) for pk in failed)}"
            )
            raise CommandError(msg)
        self.stdout.write(
            f"{_count(len(stale))}: {len(stale) - left} reconciled, {left} left pending"
        )

    @staticmethod
    def _outcome(done: services.Reconciliation) -> str:
        payment = done.payment
        if payment.status == Payment.Status.PENDING:
            return "still pending (another request is reconciling it)"
        status = payment.status
        if payment.status == Payment.Status.FAILED:
            status = f"failed, {payment.failure_code}"
        if not done.gateway:  # a retry, or its own late request, settled it first
            return f"{status} (settled by another request)"
        return f"{status} ({HOW[done.gateway]}: {payment.gateway_reference})"
