"""Numbers rounded for people: what the console's pages, the admin and the API's `display`
fields print. Stored values keep their precision; only what a person reads is rounded here
(budgets to 0.1 minute, percentages to two decimals, three where two would read 100, SLIs to
three).

Percentages that are compared with a threshold are rounded *down*: 99.899 reads 99.89, never a
99.90 that the colour beside it denies.
"""

from __future__ import annotations

import math
from datetime import timedelta

EM_DASH = "—"


def _floor(value: float, decimals: int) -> float:
    scale = 10**decimals
    # The epsilon keeps exact values exact: 100 * 999 / 1000 is 99.9, not 99.8999….
    return math.floor(value * scale + 1e-9) / scale


def percent_label(percent: float) -> str:
    """Two decimals rounded down; three between 99.99 and 100, where two would hide what is
    missing (99.995 reads 99.995, not 99.99)."""
    if 99.99 <= percent < 100:
        return f"{_floor(percent, 3):.3f}"
    return f"{_floor(percent, 2):.2f}"


def optional_percent(percent: float | None) -> str:
    return EM_DASH if percent is None else f"{percent_label(percent)} %"


def sli_label(value: float | None) -> str:
    """An SLI in percent with three decimals, rounded down like uptime."""
    return EM_DASH if value is None else f"{_floor(value, 3):.3f} %"


def budget_minutes_label(minutes: float | None) -> str:
    """Error budget in minutes to 0.1 minute (negative when overspent)."""
    if minutes is None:
        return EM_DASH
    rounded = round(minutes, 1)
    return f"{0.0 if rounded == 0 else rounded:,.1f} min"


def budget_percent_label(percent: float | None) -> str:
    if percent is None:
        return EM_DASH
    rounded = round(percent, 1)
    return f"{0.0 if rounded == 0 else rounded:.1f} %"


def burn_label(rate: float | None) -> str:
    if rate is None:
        return EM_DASH
    return f"{rate:.2f}×" if rate < 1 else f"{rate:.1f}×"


def measure_label(value: float | None) -> str:
    """A measured value (what fired an alert): 97, 0.123, 1,234.5; at most three decimals,
    none that are zero."""
    if value is None:
        return EM_DASH
    decimals = 1 if abs(value) >= 100 else 3
    return (
        f"{value:,.{decimals}f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    )


def ms_label(ms: float | None) -> str:
    """123 ms, 1.23 s, 12.3 s."""
    if ms is None:
        return EM_DASH
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def duration_label(minutes: float | None) -> str:
    """12 min, 3 h 05 min, 2 d 4 h: as precise as a glance needs."""
    if minutes is None:
        return EM_DASH
    if minutes < 1:
        return "< 1 min"
    whole = round(minutes)
    if whole < 60:
        return f"{whole} min"
    if whole < 24 * 60:
        return f"{whole // 60} h {whole % 60:02d} min"
    return f"{whole // (24 * 60)} d {whole % (24 * 60) // 60} h"


def compact_number(value: float) -> str:
    """Axis labels: 0, 2.5, 250, 1.5k, 12k, 1.2M; no trailing zeros."""
    magnitude = abs(value)
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return _trim(value / limit, 1) + suffix
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    return _trim(value, 2)


def _trim(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def span_label(delta: timedelta) -> str:
    """A window's length: 5 min, 1 h, 6 h, 3 d."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60 or minutes % (24 * 60):
        return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
    return f"{minutes // (24 * 60)} d"
