from django.db import migrations

from noc.timeseries import rollups


def create_10min_rollup(apps, schema_editor):
    # As in 0005: the definition lives in services/timeseries.py, shared with the refresh. An
    # empty table (none on TimescaleDB: the rollup is native only); the refresh fills it from
    # the minute rows within its retention, two hours of them per run.
    from services.timeseries import (
        CHECK_ROLLUP_10MIN,
        CHECK_ROLLUP_10MIN_COLUMNS,
        ROLLUP_10MIN_TABLE,
    )

    rollups.create(
        schema_editor,
        CHECK_ROLLUP_10MIN,
        CHECK_ROLLUP_10MIN_COLUMNS,
        partitioned=ROLLUP_10MIN_TABLE,
    )


def drop_10min_rollup(apps, schema_editor):
    from services.timeseries import CHECK_ROLLUP_10MIN

    rollups.drop(schema_editor, CHECK_ROLLUP_10MIN)
    # Its watermark too: a rollup created again starts from the oldest minute row.
    apps.get_model("noc", "RollupWatermark").objects.filter(name=CHECK_ROLLUP_10MIN.name).delete()


class Migration(migrations.Migration):
    dependencies = [("services", "0005_daily_rollup"), ("noc", "0001_initial")]

    operations = [migrations.RunPython(create_10min_rollup, drop_10min_rollup, elidable=False)]
