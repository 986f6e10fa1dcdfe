"""Load the demo users and plans (idempotent) and say how to get a token."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from billing.models import Plan

DEMO_USERS = (
    # username, password, is_staff (the demo's staff user is a superuser too: the admin then
    # shows it every model, and the trace viewer's links to users and payments open)
    ("alice", "alice-demo-pass", False),
    ("admin", "admin-demo-pass", True),
)
DEMO_PLANS = (
    ("Starter", "starter-monthly", Decimal("9.99"), "USD", "month"),
    ("Pro", "pro-monthly", Decimal("29.00"), "USD", "month"),
    ("Pro yearly", "pro-yearly", Decimal("290.00"), "USD", "year"),
    ("Business", "business-monthly", Decimal("99.00"), "EUR", "month"),
)


class Command(BaseCommand):
    help = (
        "Create the demo users and plans if missing, and print how to get a token; "
        "--traffic also makes requests worth exploring in the logs (make demo)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the server answers, for the printed hints (make passes HOST and PORT).",
        )
        parser.add_argument(
            "--traffic",
            action="store_true",
            help="Also make a payment, a declined one, a refused refund, a slow payment, "
            "a failed request with its traceback and a burst of failed logins.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        base = options["base_url"].rstrip("/")
        users = get_user_model().objects
        for username, password, is_staff in DEMO_USERS:
            user, created = users.get_or_create(
                username=username, defaults={"is_staff": is_staff, "is_superuser": is_staff}
            )
            if created:
                user.set_password(password)
                user.save()
        for name, code, amount, currency, interval in DEMO_PLANS:
            Plan.objects.get_or_create(
                code=code,
                defaults={
                    "name": name,
                    "amount": amount,
                    "currency": currency,
                    "interval": interval,
                },
            )
        self.stdout.write("Demo data ready:")
        for username, password, is_staff in DEMO_USERS:
            role = "staff" if is_staff else "user"
            self.stdout.write(f"  {role:5} username={username} password={password}")
        self.stdout.write(
            f"Get a token:\n  curl -s -X POST {base}/api/v1/auth/token/ "
            "-H 'Content-Type: application/json' "
            '-d \'{"username": "alice", "password": "alice-demo-pass"}\''
        )
        self.stdout.write(
            f"Admin: {base}/admin/ (admin / admin-demo-pass)\n"
            f"Trace viewer: {base}/ops/requests/\n"
            f"Metrics: {base}/metrics\n"
            f"API docs: {base}/api/docs/"
        )
        if options["traffic"]:
            from billing.demo import hints, run_traffic
            from observability import flush_logs

            made = run_traffic()
            flush_logs(10)
            hints(made, base, self.stdout.write)
