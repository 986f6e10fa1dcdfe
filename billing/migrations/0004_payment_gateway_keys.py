# Existing payments: each its own gateway key, and attempted_at = created_at, so a payment
# left pending before these migrations is reconcilable at once, not after one more lease.
# (Written by hand; see 0003.)

import re
import secrets

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def new_key() -> str:
    """billing.models.gateway_idempotency_key_new as of this migration (never 13 digits in a row)."""
    while True:
        token = secrets.token_hex(16)
        if not re.search(r"[0-9]{13}", token):
            return f"pay_{token}"


def fill_gateway_keys_and_attempts(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Payment = apps.get_model("billing", "Payment")
    Payment.objects.update(attempted_at=models.F("created_at"))
    for pk in Payment.objects.filter(gateway_idempotency_key__isnull=True).values_list("pk", flat=True).iterator():
        Payment.objects.filter(pk=pk).update(gateway_idempotency_key=new_key())


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_pending_reconciliation'),
    ]

    operations = [
        migrations.RunPython(fill_gateway_keys_and_attempts, migrations.RunPython.noop),
    ]
