# The gateway key becomes unique and required, and the sweep's index. (Written by hand; see 0003.)

import billing.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_payment_gateway_keys'),
    ]

    operations = [
        migrations.AlterField(
            model_name='payment',
            name='gateway_idempotency_key',
            field=models.CharField(default=billing.models.gateway_idempotency_key_new, editable=False, max_length=64, unique=True),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['attempted_at'], name='payment_pending_attempted_at'),
        ),
    ]
