"""The time-series storage layer shared by every app (DESIGN.md "Storage").

Two backends, chosen when a table is created (`NOC_TIMESERIES=auto|timescale|native`):
TimescaleDB hypertables with compression and retention policies when the extension is there,
declarative range partitions otherwise (created ahead and dropped by a beat task). Apps declare
their tables in a `TimeSeriesTable` registry and create them with `CreateTimeSeriesModel`.
"""
