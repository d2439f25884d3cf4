"""What the tests of the check rollups built on others (daily, 10-minute) share: their
columns, and reading a rollup's rows back as dicts."""

from __future__ import annotations

from django.db import connection

from services.choices import LATENCY_BUCKETS_MS
from services.timeseries import CHECK_ROLLUP

MINUTE = CHECK_ROLLUP.name
COUNTS = ("n_up", "n_degraded", "n_down", "n_maintenance", "rt_count",
          *(f"le_{ms}" for ms in LATENCY_BUCKETS_MS))  # fmt: skip
COLUMNS = (*COUNTS, "rt_sum", "rt_min", "rt_max", "m_total", "m_good_avail")
LES = ", ".join(f"le_{ms}" for ms in LATENCY_BUCKETS_MS)


def rows(table: str, where: str = "", params=()) -> list[dict]:
    """A rollup's rows in bucket and service order (the per-minute one has no m_ columns)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT bucket, service_id, {', '.join(c for c in COLUMNS if c[0] != 'm')}"
            f"{', m_total, m_good_avail' if table != MINUTE else ''} FROM {table} {where} "
            "ORDER BY bucket, service_id",
            params,
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
