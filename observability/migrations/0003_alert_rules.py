"""Alert rules on metric series and their alerts: new tables only (nothing to lock or rewrite)."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0006_alert_notices"),
        ("observability", "0002_logs"),
        ("services", "0003_check_gaps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200, unique=True)),
                ("description", models.TextField(blank=True)),
                ("enabled", models.BooleanField(default=True)),
                (
                    "metric",
                    models.CharField(help_text="The metric name the rule reads.", max_length=200),
                ),
                (
                    "match_labels",
                    models.JSONField(
                        blank=True,
                        default=dict,
                        help_text="Label values a series must have (all of them).",
                    ),
                ),
                (
                    "aggregation",
                    models.CharField(
                        choices=[
                            ("avg", "Average"),
                            ("sum", "Sum"),
                            ("min", "Minimum"),
                            ("max", "Maximum"),
                            ("count", "Number of points"),
                            ("last", "Last value"),
                            ("p95", "95th percentile"),
                        ],
                        max_length=8,
                    ),
                ),
                ("window_seconds", models.PositiveIntegerField(default=300)),
                (
                    "condition",
                    models.CharField(
                        choices=[
                            ("gt", ">"),
                            ("gte", ">="),
                            ("lt", "<"),
                            ("lte", "<="),
                            ("absent", "absent (no data in the window)"),
                        ],
                        max_length=8,
                    ),
                ),
                ("threshold", models.FloatField(blank=True, null=True)),
                (
                    "for_seconds",
                    models.PositiveIntegerField(
                        default=0,
                        help_text="How long the condition must hold before the alert fires.",
                    ),
                ),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("critical", "Critical"),
                            ("high", "High"),
                            ("medium", "Medium"),
                            ("low", "Low"),
                        ],
                        default="medium",
                        max_length=8,
                    ),
                ),
                (
                    "labels",
                    models.JSONField(blank=True, default=dict, help_text="Added to every alert."),
                ),
                (
                    "opens_incident",
                    models.BooleanField(
                        default=False, help_text="A firing alert opens an incident on the service."
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "application",
                    models.ForeignKey(
                        blank=True,
                        help_text="Only this application's series (any application when empty).",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alert_rules",
                        to="observability.application",
                    ),
                ),
                (
                    "channels",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Channels notified; when empty, the channels routed by the usual rules.",
                        related_name="alert_rules",
                        to="incidents.notificationchannel",
                    ),
                ),
                (
                    "service",
                    models.ForeignKey(
                        blank=True,
                        help_text="The service alerts are about: routes notifications, and opens incidents.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="alert_rules",
                        to="services.service",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="Alert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("fingerprint", models.CharField(max_length=64)),
                ("labels", models.JSONField(blank=True, default=dict)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending (breaching, not yet for long enough)"),
                            ("active", "Active (firing)"),
                            ("resolved", "Resolved"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "severity",
                    models.CharField(
                        choices=[
                            ("critical", "Critical"),
                            ("high", "High"),
                            ("medium", "Medium"),
                            ("low", "Low"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "started_at",
                    models.DateTimeField(help_text="When the condition started to hold."),
                ),
                ("fired_at", models.DateTimeField(blank=True, null=True)),
                ("ended_at", models.DateTimeField(blank=True, null=True)),
                (
                    "value",
                    models.FloatField(blank=True, help_text="The value that fired it.", null=True),
                ),
                ("last_value", models.FloatField(blank=True, null=True)),
                ("last_evaluated_at", models.DateTimeField()),
                ("acknowledged_at", models.DateTimeField(blank=True, null=True)),
                ("silenced_until", models.DateTimeField(blank=True, null=True)),
                (
                    "acknowledged_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "incident",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="incidents.incident",
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alerts",
                        to="observability.alertrule",
                    ),
                ),
            ],
            options={
                "ordering": ["-started_at", "-id"],
                "indexes": [
                    models.Index(fields=["status", "-started_at"], name="alert_status_idx")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("status__in", ("pending", "active"))),
                        fields=("rule", "fingerprint"),
                        name="alert_one_open_per_fingerprint",
                    )
                ],
            },
        ),
    ]
