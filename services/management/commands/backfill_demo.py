"""`manage.py backfill_demo --days N`: invent realistic check history for the demo services, so
a fresh install shows uptime, latency and SLO charts with something in them.

Rows go straight into services_checkresult with COPY (through a temporary table and
ON CONFLICT DO NOTHING, so a re-run adds nothing twice), then the per-minute rollup is
recomputed over the whole range. History stops where a service's real results begin.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from psycopg.types.json import Jsonb

from noc.demo_target import SLOW_SECONDS, flapping_is_up
from noc.progress import Progress
from noc.timeseries import backend, partitions
from noc.timeseries.rollups import refresh
from services.choices import CheckKind, ResultStatus
from services.models import Service
from services.timeseries import CHECK_RESULTS, CHECK_ROLLUP, CHECK_ROLLUP_HOURLY, ROLLUP_TABLE

DEMO_TAG = "demo"
MIN_STEP = timedelta(seconds=60)  # a 30 s cron still gets one row a minute: history, not load
DAY = timedelta(days=1)
COLUMNS = (
    "service_id, time, started_at, status, response_time_ms, status_code, error, details, "
    "in_maintenance"
)

Row = tuple[str, datetime, datetime, str, float | None, int | None, str, Jsonb, bool]


@dataclass(frozen=True)
class Profile:
    """How a service behaves in the invented history."""

    behaviour: str  # "normal", "down" (always), "flapping" (as the demo target does), "push"
    median_ms: float | None  # typical response time; None: not measured (push)
    status_code: int | None  # of a successful answer; None for tcp and push
    has_outages: bool = True


def profile_of(service: Service) -> Profile:
    path = urlsplit(service.url).path if service.url else ""
    if service.kind == CheckKind.PUSH:
        return Profile("push", None, None)
    if service.kind != CheckKind.HTTP:
        return Profile("normal", 1.5, None)
    if path.endswith("/down"):
        return Profile("down", 3.0, 503, has_outages=False)
    if path.endswith("/flapping"):
        return Profile("flapping", 4.0, 200, has_outages=False)
    if path.endswith("/slow"):
        return Profile("normal", SLOW_SECONDS * 1000 + 5, 200)
    return Profile("normal", 45.0, 200)


# --- inventing history ------------------------------------------------------------------------


def step_of(service: Service) -> timedelta:
    return max(service.period or MIN_STEP, MIN_STEP)


def slots(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    moment = partitions.floor(start, step)
    if moment < start:
        moment += step
    while moment < end:
        yield moment
        moment += step


def outages(rng: random.Random, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Zero to two outages of 3 to 20 minutes in a day, at random times."""
    periods = []
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        begins = start + (end - start) * rng.random()
        periods.append((begins, begins + timedelta(minutes=rng.randint(3, 20))))
    return periods


def latency(rng: random.Random, median_ms: float) -> float:
    value = rng.lognormvariate(0, 0.25) * median_ms
    if rng.random() < 0.02:  # the odd slow answer: GC pause, cold cache, congested link
        value *= rng.uniform(3, 12)
    return round(value, 2)


def verdict(
    service: Service, profile: Profile, moment: datetime, rng: random.Random, failing: bool
) -> tuple[str, float | None, int | None, str]:
    """(status, response_time_ms, status_code, error) of one invented check."""
    if profile.behaviour == "push":
        if failing:
            return ResultStatus.DOWN, None, None, "the job reported a failure"
        return ResultStatus.UP, None, None, ""
    rt = latency(rng, profile.median_ms or 1.0)
    down = profile.behaviour == "down" or failing
    if profile.behaviour == "flapping":
        down = not flapping_is_up(moment.timestamp())
    if down:
        return outage_verdict(service, profile, rng, rt)
    limit = service.max_response_time_ms
    if limit is not None and rt > limit:
        error = f"response time {rt:.0f} ms exceeds {limit} ms"
        return ResultStatus.DEGRADED, rt, profile.status_code, error
    return ResultStatus.UP, rt, profile.status_code, ""


def outage_verdict(
    service: Service, profile: Profile, rng: random.Random, rt: float
) -> tuple[str, float | None, int | None, str]:
    if profile.status_code is None or (profile.behaviour == "normal" and rng.random() < 0.3):
        if rng.random() < 0.5:
            return ResultStatus.DOWN, None, None, "connection refused"
        timeout = service.timeout_seconds
        return ResultStatus.DOWN, timeout * 1000, None, f"timed out after {timeout:g}s"
    code = 503 if profile.behaviour != "normal" else rng.choice((500, 502, 503, 504))
    expected = "/".join(map(str, service.expected_status or [200]))
    return ResultStatus.DOWN, rt, code, f"expected status {expected}, got {code}"


def service_rows(service: Service, start: datetime, end: datetime) -> Iterator[Row]:
    profile = profile_of(service)
    # Seeded by service and range, so a run can be reproduced.
    rng = random.Random(f"{service.id}:{start.isoformat()}")
    down_periods = outages(rng, start, end) if profile.has_outages else []
    details = Jsonb({"backfill": True})
    for moment in slots(start, end, step_of(service)):
        failing = any(a <= moment < b for a, b in down_periods)
        status, rt, code, error = verdict(service, profile, moment, rng, failing)
        started = moment + timedelta(milliseconds=rng.uniform(2, 250))
        yield (service.id, moment, started, status, rt, code, error, details, False)


# --- writing ----------------------------------------------------------------------------------


def live_since(services: list[Service], start: datetime) -> dict[str, datetime]:
    """The first real (not backfilled) result of each service since `start`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT service_id, min(time) FROM services_checkresult "
            "WHERE service_id = ANY(%s) AND time >= %s AND details->>'backfill' IS NULL "
            "GROUP BY service_id",
            [[s.id for s in services], start],
        )
        return dict(cursor.fetchall())


def write_rows(rows: Iterator[Row]) -> int:
    """COPY into a temporary table, then insert what is not there yet; returns rows added."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE backfill_checkresult "
            "(LIKE services_checkresult INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cursor.copy(f"COPY backfill_checkresult ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO services_checkresult ({COLUMNS}) "
            f"SELECT {COLUMNS} FROM backfill_checkresult "
            "ON CONFLICT (service_id, time) DO NOTHING"
        )
        added = cursor.rowcount
        # ON COMMIT DROP alone is not enough inside an outer transaction (tests, callers).
        cursor.execute("DROP TABLE backfill_checkresult")
        return added


def ensure_partitions(start: datetime, end: datetime) -> None:
    if backend.table_backend_of(connection, CHECK_RESULTS.table) != backend.NATIVE:
        return  # hypertables create their chunks on insert
    partitions.ensure(CHECK_RESULTS, start, end)
    partitions.ensure(ROLLUP_TABLE, start, end)


def refresh_rollup(start: datetime, end: datetime) -> int | None:
    """Recompute the per-minute rollup over [start, end); the number of buckets when native."""
    from noc.models import RollupWatermark

    rollup = CHECK_ROLLUP
    if backend.table_backend_of(connection, CHECK_RESULTS.table) == backend.TIMESCALE:
        if connection.in_atomic_block:
            # refresh_continuous_aggregate() cannot run inside a transaction block (a caller's,
            # or a test's). The inserts were logged as invalidations: the refresh policies
            # materialize them on their next run (a minute; an hour for the hourly rollup), and
            # until then real-time aggregation reads raw rows newer than what is materialized.
            return None
        # A continuous aggregate refreshes itself only near now; old buckets need asking, the
        # minute one first, then the hourly one built on it. The refresh keeps to whole buckets
        # inside its window: start from the bucket holding `start`, or it would be skipped.
        with connection.cursor() as cursor:
            for each in (rollup, CHECK_ROLLUP_HOURLY):
                cursor.execute(
                    "CALL refresh_continuous_aggregate(%s, %s, %s)",
                    [each.name, partitions.floor(start, each.bucket), end],
                )
        return None
    with transaction.atomic():
        mark, created = RollupWatermark.objects.select_for_update().get_or_create(
            name=rollup.name, defaults={"upto": end, "dirty_since": start}
        )
        if not created and (mark.dirty_since is None or mark.dirty_since > start):
            mark.dirty_since = start
            mark.save(update_fields=["dirty_since"])
    return refresh(rollup)


# --- the command ------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Write N days of invented check history for the demo services (tagged 'demo') or the "
        "given ones, then refresh the rollup. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=7, help="How far back (default 7).")
        parser.add_argument(
            "--services", default="", help="Comma-separated service ids (default: the demo)."
        )
        parser.add_argument(
            "--until",
            type=datetime.fromisoformat,
            help="End of the range, ISO 8601 (default: now).",
        )

    def handle(self, *args, days: int, services: str, until: datetime | None, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1")
        chosen = self.services(services)
        retention = settings.NOC_CHECK_RESULTS_RETENTION_DAYS
        if days > retention:
            self.stderr.write(
                f"note: results older than {retention} days are dropped by retention "
                "(NOC_CHECK_RESULTS_RETENTION_DAYS)"
            )
        now = datetime.now(UTC)
        until = until.replace(tzinfo=until.tzinfo or UTC) if until else now
        if until > now:
            raise CommandError("--until must not be in the future: this is history")
        end = partitions.floor(until, MIN_STEP)
        start = end - days * DAY
        ensure_partitions(start, end + MIN_STEP)
        added = self.backfill(chosen, start, end, days)
        buckets = refresh_rollup(start, end)
        rolled = "" if buckets is None else f"; {buckets} rollup buckets refreshed"
        self.stdout.write(
            f"backfilled {len(chosen)} service(s) over {days} day(s): {added} rows added{rolled}"
        )

    def services(self, ids: str) -> list[Service]:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        if not wanted:
            found = list(Service.objects.filter(tags__contains=[DEMO_TAG]).order_by("id"))
            if not found:
                raise CommandError(
                    "no demo services (tagged 'demo'): run manage.py load_demo, or pass --services"
                )
            return found
        found = list(Service.objects.filter(id__in=wanted).order_by("id"))
        missing = sorted(set(wanted) - {s.id for s in found})
        if missing:
            raise CommandError(f"unknown service id(s): {', '.join(missing)}")
        return found

    def backfill(self, services: list[Service], start: datetime, end: datetime, days: int) -> int:
        live = live_since(services, start)
        added = 0
        with Progress(days, label="backfilling", unit="days", stream=self.stderr) as progress:
            for day in range(days):
                chunk_start = start + day * DAY
                added += write_rows(
                    row
                    for service in services
                    for row in service_rows(
                        service, chunk_start, min(chunk_start + DAY, end, live.get(service.id, end))
                    )
                )
                progress.advance()
        return added
