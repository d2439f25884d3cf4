"""Error budgets, burn rates, alert rules and violation risk: pure arithmetic, no database.

Definitions (the README repeats them):

- objective: the share of good checks an SLO promises. Availability and latency: target / 100
  (99.9 → 0.999). Error rate: the target is the maximum percent of failed checks, so the
  objective is 1 − target / 100 (1 → 0.99); compliant while the error rate ≤ the target.
- budget = (1 − objective) × window length: 30 days at 99.9 % is 43.2 minutes.
- budget used: occurrences, error ratio × elapsed minutes of the window (the whole window when
  rolling; since the start of the period for calendar windows), so a rolling budget is spent
  exactly when the SLI falls to the target whatever the check interval; timeslices, bad minutes.
- burn rate over a lookback = observed error ratio / (1 − target): 1 spends the budget exactly
  over the window, 14.4 spends 2 % of a 30-day budget in one hour.
- Alert rules (Google SRE workbook, Sloth's defaults) for a 30-day window: page when the 1 h and
  5 min burn rates are both ≥ 14.4, or 6 h and 30 min ≥ 6; ticket when 1 d and 2 h ≥ 3, or
  3 d and 6 h ≥ 1. Each factor is "this fraction of the budget spent within the long window"
  (2 %, 5 %, 10 %, 10 %), so for another window W it scales as fraction × W / long window,
  never below 1; rules whose long window is longer than W are skipped.
- An alert clears when both its burn rates fall below CLEAR_RATIO × its threshold (hysteresis).
- Violation risk, the first that holds: critical when the budget is spent or the 1 h burn is
  ≥ 14.4; high when under 25 % remains or the burn is ≥ 6; medium under 50 % or ≥ 3; low under
  75 % or ≥ 1; none otherwise.

Arithmetic is exact (fractions: the target is a decimal, counts and window lengths are whole),
so a boundary is judged as written (999 good checks of 1,000 meet 99.9 %). What leaves here is
rounded once, at the edge, to PLACES decimals (minutes to 6 ms): no float noise reaches the
API, the admin or the report, and total = used + remaining holds to the last digit shown.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from noc.exact import PLACES, Number, exact, rounded, to_decimal

ROLLING = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
CLEAR_RATIO = 0.5


class Ratio(tuple):
    """n / d (d > 0) left unreduced: what to_decimal and rounded need, without Fraction's gcd
    on every step."""

    def as_integer_ratio(self) -> tuple[int, int]:
        return self[0], self[1]


@functools.lru_cache(maxsize=1024)
def objective_for(sli_type: str, target: Number) -> Fraction:
    """The share of good checks promised: target / 100, or for an error rate (whose target is
    the maximum percent of failed checks) 1 − target / 100."""
    percent = Fraction(str(target))
    return 1 - percent / 100 if sli_type == "error_rate" else percent / 100


def meets(good: Number, total: Number, objective: Number) -> bool | None:
    """Whether good / total reaches the objective, exactly; None without data."""
    if not total:
        return None
    # good / total ≥ objective, in integers (denominators are positive)
    good_n, good_d = good.as_integer_ratio()
    total_n, total_d = total.as_integer_ratio()
    objective_n, objective_d = objective.as_integer_ratio()
    return good_n * total_d * objective_d >= objective_n * total_n * good_d


def sli_percent(good: Number, total: Number, sli_type: str) -> float | None:
    """The SLI as an SLO reports it: percent good, or for an error rate percent failed."""
    if not total:
        return None
    good_n, good_d = good.as_integer_ratio()
    total_n, total_d = total.as_integer_ratio()
    good_share, whole = good_n * total_d, good_d * total_n  # good / total = good_share / whole
    share = whole - good_share if sli_type == "error_rate" else good_share
    return rounded(Ratio((100 * share, whole)))


@dataclass(frozen=True)
class AlertRule:
    name: str
    severity: str  # page | ticket
    long: timedelta
    short: timedelta
    budget_fraction: float  # spent within the long window when the rule fires

    def threshold(self, window: timedelta) -> float:
        return _threshold(self, window)


LOWEST_THRESHOLD = 1  # no rule fires below a burn rate of 1, whatever the window


@functools.lru_cache(maxsize=256)
def _threshold(rule: AlertRule, window: timedelta) -> float:
    # timedelta / timedelta is a float division: count microseconds instead.
    scale = Fraction(window // timedelta(microseconds=1), rule.long // timedelta(microseconds=1))
    fraction = Fraction(str(rule.budget_fraction)) * scale
    return rounded(max(Fraction(LOWEST_THRESHOLD), fraction))


def may_fire(burns: dict[timedelta, float | None]) -> bool:
    """Whether any rule could fire on these burn rates: one fires only when both its burn
    rates reach its threshold, and no threshold is under LOWEST_THRESHOLD."""
    return any(burn is not None and burn >= LOWEST_THRESHOLD for burn in burns.values())


RULES = (
    AlertRule("page-1h-5m", "page", timedelta(hours=1), timedelta(minutes=5), 0.02),
    AlertRule("page-6h-30m", "page", timedelta(hours=6), timedelta(minutes=30), 0.05),
    AlertRule("ticket-1d-2h", "ticket", timedelta(days=1), timedelta(hours=2), 0.10),
    AlertRule("ticket-3d-6h", "ticket", timedelta(days=3), timedelta(hours=6), 0.10),
)
LOOKBACKS = sorted({r.long for r in RULES} | {r.short for r in RULES})


def window_bounds(window: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    if window in ROLLING:
        return now - ROLLING[window], now
    local = now.astimezone(tz)
    if window == "month":
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = _add_months(start, 1)
    elif window == "quarter":
        first_month = 3 * ((local.month - 1) // 3) + 1
        start = local.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0)
        end = _add_months(start, 3)
    else:
        raise ValueError(f"unknown window {window!r}")
    # In UTC: subtracting two datetimes of one zone compares wall clocks, which is an hour off
    # across a daylight-saving change.
    return start.astimezone(UTC), end.astimezone(UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    # Local midnight of the 1st, re-attached to the zone so DST shifts are honoured.
    return moment.replace(
        year=moment.year + month // 12, month=month % 12 + 1, tzinfo=None
    ).replace(tzinfo=moment.tzinfo)


def window_length(window: str, now: datetime, tz: ZoneInfo) -> timedelta:
    start, end = window_bounds(window, now, tz)
    return end - start


def budget_minutes(objective: Number, window_minutes: Number) -> Fraction:
    return (1 - exact(objective)) * exact(window_minutes)


@functools.lru_cache(maxsize=1024)
def _budget_minutes(objective: tuple[int, int], window_minutes: tuple[int, int]) -> Fraction:
    # cached by the two ratios (tuples of ints hash fast): the SLOs of one kind share it
    return budget_minutes(Fraction(*objective), Fraction(*window_minutes))


def burn_rate(bad: Number, total: Number, objective: Number) -> float | None:
    if total <= 0:
        return None
    # bad / total / (1 − objective), exactly, in integers (7 per SLO per minute).
    bad_n, bad_d = bad.as_integer_ratio()
    total_n, total_d = total.as_integer_ratio()
    objective_n, objective_d = objective.as_integer_ratio()
    return rounded(
        Ratio((bad_n * total_d * objective_d, bad_d * total_n * (objective_d - objective_n)))
    )


@dataclass(frozen=True)
class Budget:
    """Exact minutes in; rounded minutes and percentages out (the remaining ones as the
    difference of the rounded ones, so the parts add up to what is shown)."""

    total: Number
    used: Number

    # Each figure computed once (the evaluation, its history row and the cache all read them).
    @functools.cached_property
    def total_minutes(self) -> float:
        return rounded(self.total)

    @functools.cached_property
    def used_minutes(self) -> float:
        return rounded(self.used)

    @functools.cached_property
    def remaining_minutes(self) -> float:
        return float(to_decimal(self.total) - to_decimal(self.used))

    def used_percent_decimal(self, places: int = PLACES) -> Decimal:
        if places == PLACES:
            return self._used_percent
        return self._percent_of_total(places)

    @functools.cached_property
    def _used_percent(self) -> Decimal:
        return self._percent_of_total(PLACES)

    def _percent_of_total(self, places: int) -> Decimal:
        if not self.total:
            return Decimal(100)
        used_n, used_d = self.used.as_integer_ratio()
        total_n, total_d = self.total.as_integer_ratio()
        if total_n < 0:
            total_n, total_d = -total_n, -total_d
        return to_decimal(Ratio((100 * used_n * total_d, used_d * total_n)), places)

    @functools.cached_property
    def used_percent(self) -> float:
        return float(self._used_percent)

    @functools.cached_property
    def remaining_percent(self) -> float:
        return float(100 - self._used_percent)


def budget_spent(
    *, objective: Number, window_minutes: Number, good: Number, total: Number,
    elapsed_minutes: Number, timeslices: bool,
) -> Budget:  # fmt: skip
    """Occurrences: the bad ratio × the elapsed minutes of the window (the whole window when
    rolling, so the budget runs out exactly when the SLI crosses the target, however often the
    service is checked); timeslices: bad minutes."""
    total_budget = _budget_minutes(objective.as_integer_ratio(), window_minutes.as_integer_ratio())
    # In integers, one Fraction at the end (its gcd once): bad = max(total − good, 0).
    good_n, good_d = good.as_integer_ratio()
    total_n, total_d = total.as_integer_ratio()
    bad_n, bad_d = max(total_n * good_d - good_n * total_d, 0), total_d * good_d
    if timeslices:
        return Budget(total=total_budget, used=Fraction(bad_n, bad_d))
    if not total:
        return Budget(total=total_budget, used=Fraction(0))
    # bad / total × the elapsed minutes (none before the window starts)
    elapsed_n, elapsed_d = elapsed_minutes.as_integer_ratio()
    elapsed_n = max(elapsed_n, 0)
    return Budget(
        total=total_budget, used=Fraction(bad_n * total_d * elapsed_n, bad_d * total_n * elapsed_d)
    )


def violation_risk(remaining_percent: float, burn: float | None) -> str:
    burn = burn or 0.0
    if remaining_percent <= 0 or burn >= 14.4:
        return "critical"
    if remaining_percent < 25 or burn >= 6:
        return "high"
    if remaining_percent < 50 or burn >= 3:
        return "medium"
    if remaining_percent < 75 or burn >= 1:
        return "low"
    return "none"


def exhaustion_forecast(
    now: datetime, remaining_minutes: float, burn: float | None, objective: Number
) -> datetime | None:
    """When the budget runs out if the current burn continues (None: not burning)."""
    if not burn or burn <= 0:
        return None
    if remaining_minutes <= 0:
        return now
    # At burn rate b, bad minutes accrue at b × (1 − objective) per minute of wall time.
    minutes = remaining_minutes / (burn * float(1 - exact(objective)))
    if not math.isfinite(minutes) or minutes > 10 * 365 * 24 * 60:
        return None
    return now + timedelta(minutes=minutes)


def rules_for(window: timedelta) -> list[AlertRule]:
    return [rule for rule in RULES if rule.long <= window]


@functools.lru_cache(maxsize=64)
def rule_limits(window: timedelta) -> tuple[tuple[AlertRule, float, float], ...]:
    """The rules that apply to a window, each with the threshold at which it fires and the
    limit under which it clears (rule_fires, rule_clears), worked out once per window."""
    return tuple(
        (rule, rule.threshold(window), rule.threshold(window) * CLEAR_RATIO)
        for rule in rules_for(window)
    )


def rule_fires(
    rule: AlertRule, window: timedelta, long_burn: float | None, short_burn: float | None
) -> bool:
    threshold = rule.threshold(window)
    return (long_burn or 0) >= threshold and (short_burn or 0) >= threshold


def rule_clears(
    rule: AlertRule, window: timedelta, long_burn: float | None, short_burn: float | None
) -> bool:
    limit = rule.threshold(window) * CLEAR_RATIO
    return (long_burn or 0) < limit and (short_burn or 0) < limit
