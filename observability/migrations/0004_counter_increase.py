"""`increase` in metrics_hourly and metrics_daily: a counter's increase within the bucket, resets
included, computed by a new aggregate `counter_increase(value ORDER BY time)`.

Native: a nullable column (no table rewrite); the buckets of the last SLO_HORIZON are marked
for the refresh task to recompute, older ones keep NULL (readers fall back to last − first).
TimescaleDB cannot change a continuous aggregate's query: both are recreated, and the refresh
policy materializes them again from the raw points (rollup rows older than the raw points'
retention are not rebuilt there). Reversible: the column or the old aggregates come back.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.db import migrations

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


class Migration(migrations.Migration):
    dependencies = [
        ("noc", "0001_initial"),
        ("observability", "0003_alert_rules"),
    ]

    operations = [
        migrations.RunSQL(CREATE_AGGREGATE, DROP_AGGREGATE, elidable=False),
        migrations.RunPython(add_increase, remove_increase, elidable=False),
    ]
