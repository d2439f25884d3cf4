"""Spans (the seed's `traces`) on the time-series layer: daily partitions or chunks by start
time, compressed on TimescaleDB. A new table only: nothing to lock or rewrite; reversing it
drops the table with its partitions."""

from datetime import timedelta

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models

from noc.timeseries.operations import CreateTimeSeriesModel


class Migration(migrations.Migration):
    dependencies = [
        ("observability", "0003_alert_rules"),
    ]

    operations = [
        CreateTimeSeriesModel(
            name="Span",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "trace_id",
                        "span_id",
                        "start_time",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),  # fmt: skip
                ("trace_id", models.CharField(max_length=32)),
                ("span_id", models.CharField(max_length=16)),
                ("parent_span_id", models.CharField(blank=True, max_length=16)),
                ("name", models.CharField(max_length=4096)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("unspecified", "Unspecified"),
                            ("internal", "Internal"),
                            ("server", "Server"),
                            ("client", "Client"),
                            ("producer", "Producer"),
                            ("consumer", "Consumer"),
                        ],
                        default="internal",
                        max_length=12,
                    ),
                ),
                ("service", models.CharField(blank=True, help_text="service.name", max_length=200)),
                ("start_time", models.DateTimeField()),
                ("end_time", models.DateTimeField()),
                ("duration_us", models.BigIntegerField(help_text="end - start, in microseconds.")),
                (
                    "status_code",
                    models.CharField(
                        choices=[("unset", "Unset"), ("ok", "OK"), ("error", "Error")],
                        default="unset",
                        max_length=8,
                    ),
                ),
                ("status_message", models.TextField(blank=True)),
                ("attributes", models.JSONField(blank=True, default=dict)),
                ("events", models.JSONField(blank=True, default=list)),
                ("links", models.JSONField(blank=True, default=list)),
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
                "ordering": ["-start_time"],
                "indexes": [
                    models.Index(fields=["application", "-start_time"], name="span_app_start_idx"),
                    django.contrib.postgres.indexes.BrinIndex(
                        fields=["start_time"], name="span_start_brin"
                    ),
                ],
            },
            # Daily partitions or chunks by start time; retention and compression follow
            # TRACES_RETENTION_DAYS and TRACES_COMPRESS_AFTER_DAYS through the time-series
            # maintenance task.
            timeseries={
                "time_column": "start_time",
                "partition": timedelta(days=1),
                "compress_after": timedelta(days=7),
                "segment_by": "application_id",
            },
        ),
    ]
