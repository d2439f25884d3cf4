"""Date-times sent to PostgreSQL: an offset it cannot parse is sent as the same instant in UTC.

PostgreSQL refuses a timestamp literal whose UTC offset is beyond ±15:59 ("time zone
displacement out of range") although Python holds offsets up to ±23:59. The API refuses such
input with a 400 (noc.api.dates); this is the net under everything else that reaches the
database with a parsed date-time (the admin's list filters and date hierarchy, django-axes,
django-celery-beat, management commands), which would otherwise fail as a 500.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

import psycopg
from psycopg.types.datetime import DatetimeDumper

from noc.api.dates import MAX_UTC_OFFSET


class UtcFallbackDatetimeDumper(DatetimeDumper):
    def dump(self, obj: datetime):
        offset = obj.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            # Past year 9999 in UTC Python cannot convert: PostgreSQL then says so itself.
            with suppress(OverflowError):
                obj = obj.astimezone(UTC)
        return super().dump(obj)


def register() -> None:
    """Before the first connection: Django copies psycopg's global adapters when it connects."""
    psycopg.adapters.register_dumper(datetime, UtcFallbackDatetimeDumper)
