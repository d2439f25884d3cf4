# The dispatcher's record of slots it reached too late, written as missed results in chunks.

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("services", "0002_hourly_rollup"),
    ]

    operations = [
        migrations.CreateModel(
            name="CheckGap",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("first_slot", models.DateTimeField()),
                ("until", models.DateTimeField()),
                ("step_seconds", models.PositiveIntegerField(null=True)),
                ("cron", models.CharField(blank=True, max_length=100)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "service",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="services.service",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("step_seconds__isnull", False),
                            models.Q(("cron", ""), _negated=True),
                            _connector="OR",
                        ),
                        name="checkgap_has_a_schedule",
                    )
                ],
            },
        ),
    ]
