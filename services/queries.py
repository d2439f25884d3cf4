"""Reads of the services app: uptime from the per-minute rollups, recent results, fleet gauges.

Uptime and latency read `services_checkrollup` only (a continuous aggregate on TimescaleDB, a
table refreshed every minute otherwise), so a window of 90 days costs at most 129,600 rows per
service whatever the check interval. Results younger than the last native refresh are not in
it yet; on TimescaleDB the aggregate is real-time and includes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Min, QuerySet
from django.utils import timezone

from noc.exact import percent
from services.choices import LATENCY_BUCKETS_MS, CheckKind
from services.models import CheckClaim, CheckResult, Service

WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
P95 = 0.95


class UnknownWindow(ValueError):
    def __init__(self, window: str) -> None:
        super().__init__(f"Unknown window {window!r}; use one of {', '.join(WINDOWS)}.")


@dataclass(frozen=True)
class Uptime:
    window: str
    since: datetime
    until: datetime
    checks: int  # up + degraded + down, outside maintenance
    up: int
    degraded: int
    failures: int  # down
    maintenance: int  # checks during a maintenance window, left out of the ratio
    uptime_percent: float | None  # None when there was no check
    response_time_avg_ms: float | None
    response_time_min_ms: float | None
    response_time_max_ms: float | None
    response_time_p95_ms: float | None  # estimated from the histogram, see histogram_quantile


_LE_SUMS = ", ".join(f"coalesce(sum(le_{ms}), 0)" for ms in LATENCY_BUCKETS_MS)
UPTIME_SQL = f"""
    SELECT coalesce(sum(n_up), 0), coalesce(sum(n_degraded), 0), coalesce(sum(n_down), 0),
           coalesce(sum(n_maintenance), 0), coalesce(sum(rt_count), 0), sum(rt_sum),
           min(rt_min), max(rt_max), {_LE_SUMS}
    FROM services_checkrollup
    WHERE service_id = %s AND bucket >= %s AND bucket < %s
"""


def window_since(window: str, now: datetime) -> datetime:
    if window not in WINDOWS:
        raise UnknownWindow(window)
    return now - WINDOWS[window]


def service_uptime(service_id: str, window: str, *, now: datetime | None = None) -> Uptime:
    """Uptime, failures and latency of one service over a window, in one aggregate query."""
    until = now or timezone.now()
    since = window_since(window, until)
    with connection.cursor() as cursor:
        cursor.execute(UPTIME_SQL, [service_id, since, until])
        up, degraded, down, maintenance, rt_count, rt_sum, rt_min, rt_max, *le = cursor.fetchone()
    checks = up + degraded + down
    return Uptime(
        window=window,
        since=since,
        until=until,
        checks=checks,
        up=up,
        degraded=degraded,
        failures=down,
        maintenance=maintenance,
        uptime_percent=percent(up + degraded, checks),
        response_time_avg_ms=rt_sum / rt_count if rt_count and rt_sum is not None else None,
        response_time_min_ms=rt_min,
        response_time_max_ms=rt_max,
        response_time_p95_ms=histogram_quantile(
            P95, rt_count, list(zip(LATENCY_BUCKETS_MS, le, strict=True)), rt_min, rt_max
        ),
    )


def histogram_quantile(
    q: float,
    count: int,
    cumulative: Sequence[tuple[float, int]],
    observed_min: float | None = None,
    observed_max: float | None = None,
) -> float | None:
    """Estimate the q-quantile of `count` observations from cumulative `(upper bound, count)`
    buckets, as Prometheus' histogram_quantile does: find the bucket that holds rank q·count and
    interpolate linearly inside it, assuming its observations are spread evenly.

    Each bucket is narrowed to the observed [min, max] first, which keeps the estimate inside
    what was seen (all responses at 20 ms read 20, not 47.5) and closes the open bucket above
    the last bound at the maximum. The error is at most the width of the bucket that holds it.
    """
    if not count:
        return None
    rank = q * count
    lower_bound, below = 0.0, 0
    for upper_bound, cum in [*cumulative, (math.inf, count)]:
        if cum >= rank and cum > below:
            lower = max(lower_bound, observed_min) if observed_min is not None else lower_bound
            upper = min(upper_bound, observed_max) if observed_max is not None else upper_bound
            if math.isinf(upper):
                return lower
            upper = max(upper, lower)
            return lower + (upper - lower) * (rank - below) / (cum - below)
        lower_bound, below = upper_bound, cum
    return None


def uptime_ratios(window: str, *, now: datetime | None = None) -> dict[str, float]:
    """{service_id: (up + degraded) / checks} over a window for every service with checks,
    in one grouped query (the /metrics scrape)."""
    since = window_since(window, now or timezone.now())
    sql = """
        SELECT service_id, sum(n_up + n_degraded)::float8 / sum(n_up + n_degraded + n_down)
        FROM services_checkrollup
        WHERE bucket >= %s
        GROUP BY service_id
        HAVING sum(n_up + n_degraded + n_down) > 0
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [since])
        return dict(cursor.fetchall())


# Only the newest result of each certificate-bearing service, one backward primary-key probe
# per service (a DISTINCT ON over every recent result would read a day of rows per scrape).
CERT_DAYS_SQL = """
    SELECT s.id, (r.details ->> 'cert_days_left')::float8
    FROM services_service s
    CROSS JOIN LATERAL (
        SELECT details FROM services_checkresult r
        WHERE r.service_id = s.id AND r.time >= %s
        ORDER BY r.time DESC LIMIT 1
    ) r
    WHERE s.enabled AND s.kind IN (%s, %s) AND r.details ? 'cert_days_left'
"""


def cert_days_remaining(*, within: timedelta = timedelta(days=2)) -> dict[str, float]:
    """{service_id: days} from each http/tls service's last result that reports a certificate."""
    since = timezone.now() - within
    with connection.cursor() as cursor:
        cursor.execute(CERT_DAYS_SQL, [since, CheckKind.HTTP, CheckKind.TLS])
        return {sid: days for sid, days in cursor.fetchall() if days is not None}


def check_lag_seconds(*, now: datetime | None = None) -> float:
    """How far behind schedule the oldest due check is (0 when none is overdue)."""
    now = now or timezone.now()
    oldest = (
        Service.objects.filter(enabled=True, next_check_at__lte=now)
        .exclude(kind=CheckKind.PUSH)
        .aggregate(oldest=Min("next_check_at"))["oldest"]
    )
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def claims_pending() -> int:
    return CheckClaim.objects.count()


def recent_results(service_id: str, *, limit: int = 20) -> QuerySet[CheckResult]:
    return CheckResult.objects.filter(service_id=service_id).order_by("-time")[:limit]
