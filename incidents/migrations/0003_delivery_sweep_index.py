"""The sweeper also picks suppressed deliveries whose rate limit ran out: its partial index
covers them. Built and dropped CONCURRENTLY (outside a transaction), so deliveries keep being
written while it runs on a populated table; the new index exists before the old one goes."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("incidents", "0002_channel_notices"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="notificationdelivery",
            index=models.Index(
                condition=models.Q(status__in=["pending", "retrying", "sending", "suppressed"]),
                fields=["next_attempt_at"],
                name="delivery_sweep_idx",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="notificationdelivery",
            name="delivery_retry_idx",
        ),
    ]
