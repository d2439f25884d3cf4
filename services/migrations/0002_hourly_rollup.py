from django.db import migrations

from noc.timeseries import rollups


def create_hourly_rollup(apps, schema_editor):
    # As in 0001: the definition lives in services/timeseries.py, shared with the refresh.
    from services.timeseries import (
        CHECK_ROLLUP_HOURLY,
        CHECK_ROLLUP_HOURLY_COLUMNS,
        ROLLUP_HOURLY_TABLE,
    )

    rollups.create(
        schema_editor,
        CHECK_ROLLUP_HOURLY,
        CHECK_ROLLUP_HOURLY_COLUMNS,
        partitioned=ROLLUP_HOURLY_TABLE,
    )


def drop_hourly_rollup(apps, schema_editor):
    from services.timeseries import CHECK_ROLLUP_HOURLY

    rollups.drop(schema_editor, CHECK_ROLLUP_HOURLY)


class Migration(migrations.Migration):
    dependencies = [("services", "0001_initial")]

    operations = [migrations.RunPython(create_hourly_rollup, drop_hourly_rollup, elidable=False)]
