"""Metric-based SLIs (ratio of two counters, histogram under a threshold).

SLOs: nullable columns and a nullable service, no table rewrite; the checks scan slos_slo only
(one row per SLO). Reversing deletes the metric-based SLOs (with their history and alerts)
first: without them the service can be required again.

The metric rollups, which SLOs read counters from (here rather than in observability so that
observability's own migrations stay a single line): `increase` in metrics_hourly and
metrics_daily, a counter's increase within the bucket, resets included, computed by a new
aggregate `counter_increase(value ORDER BY time)`. Native: a nullable column (no table
rewrite); the buckets of the last SLO_HORIZON are marked for the refresh task to recompute,
older ones keep NULL (readers fall back to last − first). TimescaleDB cannot change a
continuous aggregate's query: both are recreated, and the refresh policy materializes them
again from the raw points (rollup rows older than the raw points' retention are not rebuilt
there). Reversible: the column or the old aggregates come back.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from noc.timeseries import backend, rollups

# The longest SLO window (90 days), its longest burn-rate lookback (3 days) and a day.
SLO_HORIZON = timedelta(days=94)

# State: (previous value, increase so far) as a point, two float8s without an array's
# allocation; plpgsql is ~4x faster than a SQL-language step here (0.4 µs a row).
CREATE_AGGREGATE = [
    """
    CREATE FUNCTION counter_increase_step(state point, value double precision) RETURNS point
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
        IF state IS NULL THEN
            RETURN point(value, 0);
        END IF;
        IF value >= state[0] THEN
            RETURN point(value, state[1] + value - state[0]);
        END IF;
        RETURN point(value, state[1] + value);  -- a reset: counted from zero
    END
    $$
    """,
    "CREATE FUNCTION counter_increase_final(state point) RETURNS double precision "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT state[1] $$",
    "CREATE AGGREGATE counter_increase(double precision) (SFUNC = counter_increase_step, "
    "STYPE = point, FINALFUNC = counter_increase_final, PARALLEL = SAFE)",
]
DROP_AGGREGATE = [
    "DROP AGGREGATE counter_increase(double precision)",
    "DROP FUNCTION counter_increase_final(point)",
    "DROP FUNCTION counter_increase_step(point, double precision)",
]


def _rollups():
    from observability.timeseries import METRICS_DAILY, METRICS_HOURLY

    return (METRICS_HOURLY, METRICS_DAILY)


def _is_timescale(schema_editor, rollup) -> bool:
    return backend.table_backend_of(schema_editor.connection, rollup.name) == backend.TIMESCALE


def add_increase(apps, schema_editor):
    watermark = apps.get_model("noc", "RollupWatermark")
    since = datetime.now(UTC) - SLO_HORIZON
    for rollup in _rollups():
        if _is_timescale(schema_editor, rollup):
            rollups.drop(schema_editor, rollup)
            rollups.create_continuous_aggregate(schema_editor, rollup)
            continue
        schema_editor.execute(f"ALTER TABLE {rollup.name} ADD COLUMN increase double precision")
        marks = watermark.objects.filter(name=rollup.name, upto__gt=since)
        marks.exclude(dirty_since__lte=since).update(dirty_since=since)


def remove_increase(apps, schema_editor):
    from observability.timeseries import ROLLUP_SELECT_0001

    for rollup in _rollups():
        if _is_timescale(schema_editor, rollup):
            rollups.drop(schema_editor, rollup)
            as_before = replace(rollup, select=ROLLUP_SELECT_0001)
            rollups.create_continuous_aggregate(schema_editor, as_before)
            continue
        schema_editor.execute(f"ALTER TABLE {rollup.name} DROP COLUMN increase")


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
        ("noc", "0001_initial"),
        ("observability", "0003_alert_rules"),
        ("services", "0004_text_maximums"),
        ("slos", "0005_kept_sli_minute_sums"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(CREATE_AGGREGATE, DROP_AGGREGATE, elidable=False),
        migrations.RunPython(add_increase, remove_increase, elidable=False),
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
