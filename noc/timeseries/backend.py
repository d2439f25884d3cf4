"""Which backend a server supports, and which one an existing table uses."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

TIMESCALE = "timescale"
NATIVE = "native"
CHOICES = ("auto", TIMESCALE, NATIVE)


def configured() -> str:
    value = os.environ.get("NOC_TIMESERIES", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ImproperlyConfigured(
            f"NOC_TIMESERIES must be auto, timescale or native, not {value!r}"
        )
    return value


def timescale_available(cursor) -> bool:
    """Installed, or installable: available and preloaded (CREATE EXTENSION needs both)."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone():
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not cursor.fetchone():
        return False
    cursor.execute("SELECT current_setting('shared_preload_libraries')")
    return "timescaledb" in cursor.fetchone()[0]


def choose(connection) -> str:
    """The backend new tables get on this server."""
    wanted = configured()
    with connection.cursor() as cursor:
        available = timescale_available(cursor)
    if wanted == TIMESCALE and not available:
        raise ImproperlyConfigured(
            "NOC_TIMESERIES=timescale but the timescaledb extension is not available on this "
            "server (install it and add it to shared_preload_libraries, or use auto/native)"
        )
    if wanted == "auto":
        return TIMESCALE if available else NATIVE
    return wanted


def table_backend(cursor, table: str) -> str | None:
    """What an existing table is: 'timescale' (hypertable or continuous aggregate), 'native'
    (partitioned) or None."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone():
        cursor.execute(
            "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s "
            "UNION ALL SELECT 1 FROM timescaledb_information.continuous_aggregates "
            "WHERE view_name = %s",
            [table, table],
        )
        if cursor.fetchone():
            return TIMESCALE
    cursor.execute(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
        [table],
    )
    return NATIVE if cursor.fetchone() else None


def table_backend_of(connection, table: str) -> str | None:
    with connection.cursor() as cursor:
        return table_backend(cursor, table)
