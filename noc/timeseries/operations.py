"""Migration operations that create time-series tables on either backend.

`CreateTimeSeriesModel` is a CreateModel whose table is, in the database, a hypertable (with its
compression and retention policies) or a range-partitioned table with its first partitions.
Django's migration state is the same on both, so `makemigrations` stays clean.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import migrations

from noc.timeseries import backend, partitions
from noc.timeseries.registry import TimeSeriesTable


def interval_sql(delta) -> str:
    """An interval literal; whole days stay days, so policies read "30 days", not "720:00:00"."""
    seconds = int(delta.total_seconds())
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    return f"{seconds} seconds"


class CreateTimeSeriesModel(migrations.CreateModel):
    def __init__(self, name, fields, *, timeseries: dict, **kwargs) -> None:
        self.timeseries = timeseries
        super().__init__(name, fields, **kwargs)

    def deconstruct(self):
        _name, args, kwargs = super().deconstruct()
        kwargs["timeseries"] = self.timeseries
        return self.__class__.__qualname__, args, kwargs

    def spec(self, model) -> TimeSeriesTable:
        return TimeSeriesTable(table=model._meta.db_table, **self.timeseries)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        spec = self.spec(model)
        if backend.choose(schema_editor.connection) == backend.TIMESCALE:
            create_hypertable(schema_editor, model, spec)
        else:
            create_partitioned(schema_editor, model, spec)

    def describe(self) -> str:
        return f"Create time-series model {self.name}"


def create_partitioned(schema_editor, model, spec: TimeSeriesTable) -> None:
    sql, params = schema_editor.table_sql(model)
    column = schema_editor.quote_name(spec.time_column)
    schema_editor.execute(f"{sql} PARTITION BY RANGE ({column})", params or None)
    schema_editor.deferred_sql.extend(schema_editor._model_indexes_sql(model))
    now = datetime.now(UTC)
    partitions.ensure(
        spec,
        now - spec.partition,
        now + spec.partition * (spec.create_ahead + 1),
        using=schema_editor.connection,
    )


def create_hypertable(schema_editor, model, spec: TimeSeriesTable) -> None:
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    schema_editor.create_model(model)
    # The model declares its indexes, as on the native backend: the default index on the time
    # column would duplicate one of them.
    schema_editor.execute(
        "SELECT create_hypertable(%s, %s, chunk_time_interval => %s::interval, "
        "create_default_indexes => false, if_not_exists => true)",
        [spec.table, spec.time_column, interval_sql(spec.partition)],
    )
    if spec.compress_after:
        segment = (
            f", timescaledb.compress_segmentby = '{spec.segment_by}'" if spec.segment_by else ""
        )
        schema_editor.execute(f'ALTER TABLE "{spec.table}" SET (timescaledb.compress{segment})')
        schema_editor.execute(
            "SELECT add_compression_policy(%s, %s::interval, if_not_exists => true)",
            [spec.table, interval_sql(spec.compress_after)],
        )
    if spec.retention:
        schema_editor.execute(
            "SELECT add_retention_policy(%s, %s::interval, if_not_exists => true)",
            [spec.table, interval_sql(spec.retention)],
        )
