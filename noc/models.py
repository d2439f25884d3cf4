"""Project-wide tables: the progress of the native rollups."""

from __future__ import annotations

from django.db import models


class RollupWatermark(models.Model):
    """How far a native rollup has been computed, and the oldest late write since.

    Writers that insert rows older than `upto` lower `dirty_since`; the refresh recomputes from
    there, so a batch re-delivered an hour late still reaches the rollup."""

    name = models.CharField(primary_key=True, max_length=100)
    upto = models.DateTimeField()
    dirty_since = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} up to {self.upto:%Y-%m-%d %H:%M:%S}"
