"""The slos app's time series: the history of SLO evaluations."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from noc.timeseries.registry import TimeSeriesTable, register

SLO_HISTORY = register(
    TimeSeriesTable(
        table="slos_slostatus",
        partition=timedelta(days=1),
        retention=timedelta(days=settings.SLO_HISTORY_RETENTION_DAYS),
        compress_after=timedelta(days=7),
        segment_by="slo_id",
    )
)
