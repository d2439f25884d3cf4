"""Log lines on the time-series layer (daily partitions or chunks) with a generated tsvector and
its GIN index, a trigram index on the message where pg_trgm can be had, and the outbox that
holds accepted batches while Elasticsearch is away. New tables only: nothing to lock or rewrite.
"""

from datetime import timedelta

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

from noc.timeseries.operations import CreateTimeSeriesModel

TRIGRAM_INDEX = "logline_message_trgm"


def create_trigram_index(apps, schema_editor):
    """Substring search (`*part*`) uses pg_trgm where the server has it; elsewhere it scans."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON observability_logline "
            "USING gin (message gin_trgm_ops)"
        )


def drop_trigram_index(apps, schema_editor):
    # The extension stays: other tables may use it, and it costs nothing unused.
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("observability", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="LogOutbox",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("line_count", models.PositiveIntegerField()),
                (
                    "documents",
                    models.BinaryField(help_text="gzip of the batch's documents as JSON lines."),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                (
                    "next_attempt_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                ("last_error", models.CharField(blank=True, max_length=500)),
            ],
            options={
                "verbose_name": "log outbox batch",
                "verbose_name_plural": "log outbox",
                "ordering": ["id"],
            },
        ),
        CreateTimeSeriesModel(
            name="LogLine",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "time", "uid", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("uid", models.UUIDField()),
                ("time", models.DateTimeField()),
                (
                    "level",
                    models.CharField(
                        choices=[
                            ("trace", "Trace"),
                            ("debug", "Debug"),
                            ("info", "Info"),
                            ("warn", "Warning"),
                            ("error", "Error"),
                            ("fatal", "Fatal"),
                        ],
                        max_length=8,
                    ),
                ),
                ("service", models.CharField(blank=True, max_length=200)),
                ("host", models.CharField(blank=True, max_length=255)),
                ("trace_id", models.CharField(blank=True, max_length=32)),
                ("span_id", models.CharField(blank=True, max_length=16)),
                ("message", models.TextField()),
                ("attributes", models.JSONField(blank=True, default=dict)),
                (
                    "search",
                    models.GeneratedField(
                        db_persist=True,
                        expression=models.Func(
                            models.F("message"),
                            template="to_tsvector('simple'::regconfig, %(expressions)s)",
                        ),
                        output_field=django.contrib.postgres.search.SearchVectorField(),
                    ),
                ),
                (
                    "application",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="observability.application",
                    ),
                ),
            ],
            options={
                "ordering": ["-time", "-uid"],
                "indexes": [
                    django.contrib.postgres.indexes.GinIndex(
                        fields=["search"], name="logline_search_gin"
                    ),
                    models.Index(
                        condition=models.Q(("trace_id", ""), _negated=True),
                        fields=["trace_id"],
                        name="logline_trace_idx",
                    ),
                    models.Index(fields=["application", "-time"], name="logline_app_time_idx"),
                ],
            },
            # Retention follows LOG_RETENTION_DAYS through the time-series maintenance task.
            timeseries={"partition": timedelta(days=1)},
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
