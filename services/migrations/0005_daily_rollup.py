from django.db import migrations

from noc.timeseries import rollups


def create_daily_rollup(apps, schema_editor):
    # As in 0002: the definition lives in services/timeseries.py, shared with the refresh. An
    # empty table (none on TimescaleDB: the rollup is native only); the refresh fills it from
    # the hourly rows, two days of them per run.
    from services.timeseries import (
        CHECK_ROLLUP_DAILY,
        CHECK_ROLLUP_DAILY_COLUMNS,
        ROLLUP_DAILY_TABLE,
    )

    rollups.create(
        schema_editor,
        CHECK_ROLLUP_DAILY,
        CHECK_ROLLUP_DAILY_COLUMNS,
        partitioned=ROLLUP_DAILY_TABLE,
    )


def drop_daily_rollup(apps, schema_editor):
    from services.timeseries import CHECK_ROLLUP_DAILY

    rollups.drop(schema_editor, CHECK_ROLLUP_DAILY)
    # Its watermark too: a rollup created again starts from the oldest hourly row.
    apps.get_model("noc", "RollupWatermark").objects.filter(name=CHECK_ROLLUP_DAILY.name).delete()


class Migration(migrations.Migration):
    dependencies = [("services", "0004_text_maximums"), ("noc", "0001_initial")]

    operations = [migrations.RunPython(create_daily_rollup, drop_daily_rollup, elidable=False)]
