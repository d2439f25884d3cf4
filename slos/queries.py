"""Reads of the slos app: the lists the API and admin show, the status history (the seed's
getLatestStatus and getStatusHistory), the burn-down series for a chart and the risk summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.utils import timezone

from slos.choices import RISK_RANK
from slos.models import SLO, SLOAlert, SLOStatus

HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 10_000
BUDGET_MAX_POINTS = 500
RECENT_HISTORY = 20  # rows the admin change page shows

# none = 0 … critical = 4, so descending order puts the SLOs most at risk first.
RISK_ORDER = Case(
    *(When(violation_risk=risk, then=Value(rank)) for risk, rank in RISK_RANK.items()),
    default=Value(-1),
    output_field=IntegerField(),
)


def slos_for_list() -> QuerySet[SLO]:
    """Every SLO with its service joined (one query per page) and `risk` to order by."""
    return SLO.objects.select_related("service").annotate(risk=RISK_ORDER)


def slo_summary() -> list[SLO]:
    """Every SLO, most at risk first, then the least budget left; one query."""
    return list(
        slos_for_list().order_by(
            F("risk").desc(), F("budget_remaining_percent").asc(nulls_last=True), "id"
        )
    )


def slo_latest_status(slo_id: str) -> SLOStatus | None:
    """The newest evaluation (a backward probe of the (slo_id, time) primary key)."""
    return SLOStatus.objects.filter(slo_id=slo_id).order_by("-time").first()


def slo_status_history(
    slo_id: str,
    *,
    limit: int = HISTORY_DEFAULT_LIMIT,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[SLOStatus]:
    """Evaluations newest first, at most `limit`, optionally within [since, until)."""
    rows = SLOStatus.objects.filter(slo_id=slo_id)
    if since is not None:
        rows = rows.filter(time__gte=since)
    if until is not None:
        rows = rows.filter(time__lt=until)
    return list(rows.order_by("-time")[:limit])


def slo_recent_history(slo_id: str) -> list[SLOStatus]:
    return slo_status_history(slo_id, limit=RECENT_HISTORY)


def slo_alerts(slo_id: str) -> QuerySet[SLOAlert]:
    return SLOAlert.objects.filter(slo_id=slo_id).order_by("-fired_at", "-id")


# --- burn-down ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetPoint:
    time: datetime
    budget_remaining_minutes: float
    budget_remaining_percent: float


@dataclass(frozen=True)
class BurnDown:
    window_start: datetime
    window_end: datetime
    bucket: timedelta
    budget_total_minutes: float
    points: list[BudgetPoint]


# The last evaluation of each bucket: a history row carries the budget left at that moment, so
# the last one of a bucket is the value at its end (an average would blur a sudden burn).
BURN_DOWN_SQL = """
    SELECT DISTINCT ON (date_bin(%(bucket)s, time, %(origin)s))
           time, budget_remaining_minutes,
           -- In numeric: 100 − a float8 percentage would carry float noise.
           (100 - budget_used_percent::numeric)::float8
    FROM slos_slostatus
    WHERE slo_id = %(slo)s AND time >= %(start)s AND time < %(end)s
    ORDER BY date_bin(%(bucket)s, time, %(origin)s), time DESC
"""


def burn_down_bucket(window: timedelta, points: int = BUDGET_MAX_POINTS) -> timedelta:
    """Whole minutes, so that the window holds at most `points` buckets."""
    return timedelta(minutes=max(1, math.ceil(window / timedelta(minutes=1) / points)))


def slo_burn_down(slo: SLO, *, now: datetime | None = None) -> BurnDown:
    """Budget left over the SLO's current window, oldest first, at most ~500 points."""
    now = now or timezone.now()
    start, end = slo.window_bounds(now)
    # In UTC: one zone's datetimes subtract as wall-clock times (an hour off across DST).
    bucket = burn_down_bucket(end.astimezone(UTC) - start.astimezone(UTC))
    params = {"bucket": bucket, "origin": start, "slo": slo.pk, "start": start, "end": now}
    with connection.cursor() as cursor:
        cursor.execute(BURN_DOWN_SQL, params)
        points = [BudgetPoint(*row) for row in cursor.fetchall()]
    return BurnDown(
        window_start=start,
        window_end=end,
        bucket=bucket,
        budget_total_minutes=slo.budget_minutes(now),
        points=points,
    )
