"""The SLA report: per service and SLO, uptime, downtime, incidents and error budget spent over a
calendar month or quarter, summed from the check rollups in one set-based statement.

Definitions:
- uptime % = (up + degraded) / (up + degraded + down) over the period's checks (maintenance
  checks are left out by the rollup itself); null when there was no check.
- downtime minutes = minutes with at least one failed check.
- incidents = incidents detected in the period for the service.
- per SLO, good / total as the SLO's evaluation counts them (occurrences or timeslices, any SLI
  type) and the budget used as slos.budget computes it, over the whole period: (1 − target) ×
  the period's length is the budget, so an ongoing period shows what is spent so far
  (occurrences: error ratio × the elapsed minutes of the period; timeslices: bad minutes).

Figures are computed exactly and rounded once (slos.budget): minutes to MINUTE_DECIMALS,
percentages to PERCENT_DECIMALS. They are decimals, which the CSV writes as they are (no float
noise, no exponent) and the JSON as numbers.

Service figures use the period in UTC; an SLO's use the period in its own time zone. Whole hours
are read from the hourly rollup, the minutes before the first and after the last whole hour from
the per-minute rollup, so a quarter costs ~2,200 rows per service and any zone is exact.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from incidents.models import Incident
from noc.timeseries.partitions import floor
from services.choices import LATENCY_BUCKETS_MS
from services.models import Service
from slos import budget
from slos.choices import CHECK_SLI_TYPES, BudgetingMethod, SliType
from slos.models import SLO
from slos.sli import LE, Sums

PERIODS = ("month", "quarter")
HOUR = timedelta(hours=1)
PERCENT_DECIMALS = 4
# Days a report can be asked for: the period's bounds in any time zone must stay within
# datetime's years 1..9999 (year 1 in Asia/Tokyo begins in year 0 in UTC).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
MINUTE_DECIMALS = 2


class UnknownPeriod(ValueError):
    def __init__(self, period: str) -> None:
        super().__init__(f"Unknown period {period!r}; use one of {', '.join(PERIODS)}.")


@dataclass(frozen=True)
class Period:
    kind: str  # month | quarter
    day: date  # any day inside it

    def __post_init__(self) -> None:
        if self.kind not in PERIODS:
            raise UnknownPeriod(self.kind)

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.day.year}-{self.day.month:02d}"
        return f"{self.day.year}-Q{(self.day.month - 1) // 3 + 1}"

    def bounds(self, tz: ZoneInfo = UTC) -> tuple[datetime, datetime]:
        """[start, end) of the calendar period in a time zone (midnight local)."""
        noon = datetime.combine(self.day, time(12), tzinfo=tz)
        return budget.window_bounds(self.kind, noon, tz)


# --- the rollup sums, for many ranges at once ---------------------------------------------------


@dataclass(frozen=True)
class Range:
    service_id: str
    start: datetime
    end: datetime  # not after now: the future has no data

    def segments(self) -> tuple[list[tuple[datetime, datetime]], tuple[datetime, datetime] | None]:
        """(minute segments, hour segment): whole UTC hours inside, the edges in minutes."""
        first_hour = floor(self.start + HOUR - timedelta(microseconds=1), HOUR)
        last_hour = floor(self.end, HOUR)
        if first_hour >= last_hour:
            return [(self.start, self.end)] if self.start < self.end else [], None
        minutes = [(a, b) for a, b in ((self.start, first_hour), (last_hour, self.end)) if a < b]
        return minutes, (first_hour, last_hour)


def _segment_cte(name: str) -> str:
    return (
        f"{name} AS (SELECT * FROM unnest(%({name}_key)s::int[], %({name}_service)s::varchar[], "
        f"%({name}_from)s::timestamptz[], %({name}_to)s::timestamptz[]) "
        "AS s(key, service_id, t_from, t_to))"
    )


def _rollup_select(segments: str, table: str, minutes: str, down_minutes: str) -> str:
    counts = ", ".join(f"r.{c}" for c in ("n_up", "n_degraded", "n_down", *LE))
    return (
        f"SELECT {segments}.key, {counts}, {minutes} AS minutes, {down_minutes} AS down_minutes "
        f"FROM {segments} JOIN {table} r ON r.service_id = {segments}.service_id "
        f"AND r.bucket >= {segments}.t_from AND r.bucket < {segments}.t_to"
    )


def _sums_sql() -> str:
    # Per-minute rows count 1 minute with data (0 when empty); hourly rows carry their counts.
    has_data = "(r.n_up + r.n_degraded + r.n_down > 0)::int"
    minute_rows = _rollup_select("ms", "services_checkrollup", has_data, "(r.n_down > 0)::int")
    hour_rows = _rollup_select(
        "hs", "services_checkrollup_hourly", "r.m_total", "r.m_total - r.m_good_avail"
    )
    sums = ", ".join(
        f"coalesce(sum({c}), 0)::bigint AS {c}"
        for c in ("n_up", "n_degraded", "n_down", *LE, "minutes", "down_minutes")
    )
    return (
        f"WITH {_segment_cte('ms')}, {_segment_cte('hs')} "
        f"SELECT key, {sums} FROM ({minute_rows} UNION ALL {hour_rows}) rows GROUP BY key"
    )


def _segment_params(name: str, segments: list[tuple[int, str, datetime, datetime]]) -> dict:
    columns = list(zip(*segments, strict=True)) or [(), (), (), ()]
    parts = ("key", "service", "from", "to")
    return {f"{name}_{part}": list(column) for part, column in zip(parts, columns, strict=True)}


@dataclass(frozen=True)
class Totals:
    """What the rollups hold for one range."""

    sums: Sums
    down_minutes: int


def read_totals(ranges: list[Range]) -> list[Totals]:
    """Sums for every range, in one statement whatever their number."""
    if not ranges:
        return []
    minute_segments, hour_segments = [], []
    for key, r in enumerate(ranges):
        minutes, hours = r.segments()
        minute_segments += [(key, r.service_id, a, b) for a, b in minutes]
        if hours:
            hour_segments.append((key, r.service_id, *hours))
    params = _segment_params("ms", minute_segments) | _segment_params("hs", hour_segments)
    with connection.cursor() as cursor:
        cursor.execute(_sums_sql(), params)
        names = [c.name for c in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    return [_totals(rows.get(key)) for key in range(len(ranges))]


def _totals(row: dict | None) -> Totals:
    if row is None:
        return Totals(Sums(), 0)
    sums = Sums(
        n_up=row["n_up"],
        n_degraded=row["n_degraded"],
        n_down=row["n_down"],
        le={ms: row[f"le_{ms}"] for ms in LATENCY_BUCKETS_MS},
        minutes=row["minutes"],
        good_minutes=row["minutes"] - row["down_minutes"],
    )
    return Totals(sums, row["down_minutes"])


# --- the report ---------------------------------------------------------------------------------


@dataclass
class SloLine:
    slo: str
    name: str
    sli_type: str
    target: Decimal  # error_rate: the maximum percent failed
    budgeting_method: str
    time_zone: str
    enabled: bool
    start: datetime
    end: datetime
    good: Decimal
    total: Decimal
    sli_percent: Decimal | None  # as the SLO reports it: error_rate is the percent failed
    compliant: bool | None
    budget_total_minutes: Decimal
    budget_used_minutes: Decimal
    budget_used_percent: Decimal


@dataclass
class ServiceLine:
    service: str
    name: str
    checks: int
    up: int
    degraded: int
    down: int
    checked_minutes: int
    uptime_percent: Decimal | None
    downtime_minutes: int
    incidents: int
    slos: list[SloLine] = field(default_factory=list)


@dataclass
class Report:
    period: str
    label: str
    date: date
    start: datetime
    end: datetime
    complete: bool  # False while the period is still running
    generated_at: datetime
    services: list[ServiceLine]


def sla_report(
    *, period: str, day: date, service_id: str | None = None, now: datetime | None = None
) -> Report:
    """The SLA report of every service (or one) for the calendar period containing `day`."""
    now = now or timezone.now()
    p = Period(period, day)
    services = Service.objects.order_by("id")
    if service_id:
        services = services.filter(pk=service_id)
    services = list(services.only("id", "name"))
    # Metric SLIs count events, not checks: the report's check sums would misstate them.
    slos = list(
        SLO.objects.filter(service__in=services, sli_type__in=CHECK_SLI_TYPES).order_by(
            "service_id", "id"
        )
    )
    start, end = p.bounds()
    # One range per service (UTC) and one per SLO (its own zone), summed in one statement.
    ranges = [Range(s.pk, *_clamped((start, end), now)) for s in services]
    slo_ranges = [
        Range(o.service_id, *_clamped(p.bounds(ZoneInfo(o.time_zone)), now)) for o in slos
    ]
    totals = read_totals(ranges + slo_ranges)
    service_totals, slo_totals = totals[: len(services)], totals[len(services) :]
    incidents = _incident_counts(start, end, services)
    lines = {
        s.pk: _service_line(s, t, incidents.get(s.pk, 0))
        for s, t in zip(services, service_totals, strict=True)
    }
    for slo, t, r in zip(slos, slo_totals, slo_ranges, strict=True):
        lines[slo.service_id].slos.append(_slo_line(slo, t.sums, p, elapsed_until=r.end))
    return Report(
        period=period,
        label=p.label,
        date=day,
        start=start,
        end=end,
        complete=end <= now,
        generated_at=now,
        services=list(lines.values()),
    )


def _clamped(bounds: tuple[datetime, datetime], now: datetime) -> tuple[datetime, datetime]:
    start, end = bounds
    return start, max(start, min(end, now))


def _incident_counts(start: datetime, end: datetime, services: list[Service]) -> dict[str, int]:
    """{service_id: incidents detected in [start, end)}, one grouped query."""
    return dict(
        Incident.objects.filter(detected_at__gte=start, detected_at__lt=end, service__in=services)
        .values("service_id")
        .annotate(n=Count("id"))
        .values_list("service_id", "n")
    )


def _service_line(service: Service, totals: Totals, incidents: int) -> ServiceLine:
    s = totals.sums
    good = s.n_up + s.n_degraded
    return ServiceLine(
        service=service.pk,
        name=service.name,
        checks=int(s.total),
        up=int(s.n_up),
        degraded=int(s.n_degraded),
        down=int(s.n_down),
        checked_minutes=int(s.minutes),
        uptime_percent=_percent(budget.exact(good) / budget.exact(s.total)) if s.total else None,
        downtime_minutes=int(totals.down_minutes),
        incidents=incidents,
    )


def _good_total(slo: SLO, s: Sums) -> tuple[float, float]:
    """As slos.actions.evaluate counts them: checks (occurrences) or minutes (timeslices)."""
    if slo.budgeting_method != BudgetingMethod.TIMESLICES:
        return s.good(slo.sli_type, slo.latency_threshold_ms), s.total
    if slo.sli_type == SliType.LATENCY:
        share = s.good(slo.sli_type, slo.latency_threshold_ms) / s.total if s.total else 0
        return s.minutes * share, s.minutes
    return s.good_minutes, s.minutes


def _slo_line(slo: SLO, s: Sums, period: Period, *, elapsed_until: datetime) -> SloLine:
    """`elapsed_until`: the end of the period, or now while it runs (the elapsed part is what
    an occurrences budget is charged for, as the live evaluation of a calendar window does)."""
    start, end = period.bounds(ZoneInfo(slo.time_zone))
    good, total = _good_total(slo, s)
    spent = budget.budget_spent(
        objective=slo.objective,
        window_minutes=_minutes_between(start, end),
        good=good,
        total=total,
        elapsed_minutes=_minutes_between(start, elapsed_until),
        timeslices=slo.budgeting_method == BudgetingMethod.TIMESLICES,
    )
    ratio = budget.exact(good) / budget.exact(total) if total else None
    sli = None if ratio is None else (1 - ratio if slo.sli_type == SliType.ERROR_RATE else ratio)
    return SloLine(
        slo=slo.pk,
        name=slo.name,
        sli_type=slo.sli_type,
        target=slo.target.normalize(),
        budgeting_method=slo.budgeting_method,
        time_zone=slo.time_zone,
        enabled=slo.enabled,
        start=start,
        end=end,
        good=budget.to_decimal(good, MINUTE_DECIMALS),
        total=budget.to_decimal(total, MINUTE_DECIMALS),
        sli_percent=None if sli is None else _percent(sli),
        compliant=budget.meets(good, total, slo.objective),
        budget_total_minutes=budget.to_decimal(spent.total, MINUTE_DECIMALS),
        budget_used_minutes=budget.to_decimal(spent.used, MINUTE_DECIMALS),
        budget_used_percent=spent.used_percent_decimal(PERCENT_DECIMALS),
    )


def _minutes_between(start: datetime, end: datetime) -> Fraction:
    # In UTC: two datetimes of one zone subtract as wall-clock times, which a DST change in the
    # period would make an hour off (October in Madrid is 31 days and 1 hour).
    delta = end.astimezone(UTC) - start.astimezone(UTC)
    return Fraction(delta // timedelta(microseconds=1), 60_000_000)


def _percent(ratio: Fraction) -> Decimal:
    return budget.to_decimal(100 * ratio, PERCENT_DECIMALS)


# --- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "period", "period_start", "period_end", "service", "service_name", "checks",
    "uptime_percent", "downtime_minutes", "incidents", "slo", "slo_name", "sli_type", "target",
    "time_zone", "sli_percent", "compliant", "budget_total_minutes", "budget_used_minutes",
    "budget_used_percent",
]  # fmt: skip


def report_csv(report: Report) -> str:
    """One row per service and SLO (a service without SLOs gets one row), with a header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.services:
        head = [
            report.label, _iso(report.start), _iso(report.end), line.service, line.name,
            line.checks, _blank(line.uptime_percent), line.downtime_minutes, line.incidents,
        ]  # fmt: skip
        for slo in line.slos or [None]:
            writer.writerow(head + _slo_cells(slo))
    return out.getvalue()


def _slo_cells(slo: SloLine | None) -> list:
    if slo is None:
        return [""] * (len(CSV_COLUMNS) - 9)
    return [
        slo.slo, slo.name, slo.sli_type, _blank(slo.target), slo.time_zone,
        _blank(slo.sli_percent), _blank(slo.compliant), _blank(slo.budget_total_minutes),
        _blank(slo.budget_used_minutes), _blank(slo.budget_used_percent),
    ]  # fmt: skip


def _blank(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        # Fixed-point, as computed: 446.4, 0.0001 and 100, never 4.464E+2 or 1e-04.
        return format(value.normalize(), "f")
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
