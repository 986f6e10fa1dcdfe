"""Load the demo users and plans (idempotent) and say how to get a token."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

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
    help = "Create the demo users and plans if missing, and print how to get a token."

    def handle(self, *args: Any, **options: Any) -> None:
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
            "Get a token:\n  curl -s -X POST http://127.0.0.1:8000/api/v1/auth/token/ "
            "-H 'Content-Type: application/json' "
            '-d \'{"username": "alice", "password": "alice-demo-pass"}\''
        )
