"""Metric-based SLIs (ratio of two counters, histogram under a threshold): nullable columns and a
nullable service, no table rewrite; the checks scan slos_slo only (one row per SLO).

Reversing deletes the metric-based SLOs (with their history and alerts) first: without them
the service can be required again."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def delete_metric_slos(apps, schema_editor):
    slo = apps.get_model("slos", "SLO")
    metric = list(
        slo.objects.filter(sli_type__in=["ratio", "histogram"]).values_list("id", flat=True)
    )
    if not metric:
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DELETE FROM slos_slostatus WHERE slo_id = ANY(%s)", [metric])
    slo.objects.filter(id__in=metric).delete()
    with schema_editor.connection.cursor() as cursor:
        # The deletes' deferred foreign-key checks must run before slos_slo is altered.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [
        ("services", "0004_text_maximums"),
        ("slos", "0003_text_maximums"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="slo",
            name="good_metric",
            field=models.JSONField(
                blank=True, help_text="Ratio: the counter of good events.", null=True
            ),
        ),
        migrations.AddField(
            model_name="slo",
            name="histogram_metric",
            field=models.JSONField(
                blank=True,
                help_text="Histogram: its name without _bucket/_count (http_request_duration_seconds).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="slo",
            name="histogram_threshold",
            field=models.FloatField(
                blank=True,
                help_text="Histogram: good events are those at or under this bucket bound (its `le`, in the histogram's unit: 0.3 for 300 ms in seconds).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="slo",
            name="total_metric",
            field=models.JSONField(
                blank=True, help_text="Ratio: the counter of all events.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="slo",
            name="service",
            field=models.ForeignKey(
                blank=True,
                help_text="Check-based SLIs read this service's checks. Optional for metric SLIs: pages open incidents on it and notices are routed by it.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="slos",
                to="services.service",
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, delete_metric_slos, elidable=False),
        migrations.AlterField(
            model_name="slo",
            name="sli_type",
            field=models.CharField(
                choices=[
                    ("availability", "Availability"),
                    ("latency", "Latency"),
                    ("error_rate", "Error rate"),
                    ("ratio", "Ratio of two counters (good events / total events)"),
                    ("histogram", "Latency histogram under a threshold"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="slostatus",
            name="sli_type",
            field=models.CharField(
                choices=[
                    ("availability", "Availability"),
                    ("latency", "Latency"),
                    ("error_rate", "Error rate"),
                    ("ratio", "Ratio of two counters (good events / total events)"),
                    ("histogram", "Latency histogram under a threshold"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="slo",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("sli_type__in", ("ratio", "histogram")),
                    ("service__isnull", False),
                    _connector="OR",
                ),
                name="slo_checks_need_service",
            ),
        ),
        migrations.AddConstraint(
            model_name="slo",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("sli_type", "ratio"), _negated=True),
                    models.Q(("good_metric__isnull", False), ("total_metric__isnull", False)),
                    _connector="OR",
                ),
                name="slo_ratio_needs_counters",
            ),
        ),
        migrations.AddConstraint(
            model_name="slo",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("sli_type", "histogram"), _negated=True),
                    models.Q(
                        ("histogram_metric__isnull", False), ("histogram_threshold__isnull", False)
                    ),
                    _connector="OR",
                ),
                name="slo_histogram_needs_threshold",
            ),
        ),
    ]
