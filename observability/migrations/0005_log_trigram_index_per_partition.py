"""The log lines' trigram index moves from the table to its partitions, where the maintenance
task keeps it as LOG_TRIGRAM_INDEX says (by default on the days past only: on the day being
written it cost ingestion two thirds of its rate). Native partitions only; on TimescaleDB the
hypertable keeps its index.

Safe on a populated table: outside a transaction, the partitions' indexes are built
CONCURRENTLY before the table's is dropped (a short lock), so substring search keeps its index
on the days past throughout. Backwards, each partition gets an index built CONCURRENTLY, which
is attached to the table's, made `ON ONLY`; then the per-partition ones are dropped.
"""

from django.db import migrations

from noc.timeseries import backend, partitions

TABLE = "observability_logline"
TABLE_INDEX = "logline_message_trgm"  # 0002's


def _native_with_trigrams(connection) -> bool:
    if backend.table_backend_of(connection, TABLE) != backend.NATIVE:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def to_partitions(apps, schema_editor):
    connection = schema_editor.connection
    if not _native_with_trigrams(connection):
        return
    from observability.timeseries import LOG_LINES

    partitions.keep_indexes(LOG_LINES, using=connection)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {TABLE_INDEX}")


def to_table(apps, schema_editor):
    connection = schema_editor.connection
    if not _native_with_trigrams(connection):
        return
    from dataclasses import replace

    from observability.timeseries import LOG_LINES, MESSAGE_TRIGRAMS

    # Indexes of their own name to attach (one attached to the table's cannot be dropped alone
    # later), then the maintenance task's are dropped.
    attached = replace(MESSAGE_TRIGRAMS, suffix="message_trgm_table", on="all")
    partitions.keep_indexes(replace(LOG_LINES, partition_indexes=(attached,)), using=connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE_INDEX} ON ONLY {TABLE} "
            f"USING {MESSAGE_TRIGRAMS.method}"
        )
        for partition in partitions.existing(LOG_LINES, using=connection):
            name = partitions.index_name(partition, attached)
            cursor.execute(f'ALTER INDEX {TABLE_INDEX} ATTACH PARTITION "{name}"')
    dropped = replace(MESSAGE_TRIGRAMS, on="off")
    partitions.keep_indexes(replace(LOG_LINES, partition_indexes=(dropped,)), using=connection)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY

    dependencies = [
        ("observability", "0004_spans"),
    ]

    operations = [
        migrations.RunPython(to_partitions, to_table, elidable=False),
    ]
