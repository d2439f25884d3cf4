"""SVG charts of the dashboard and the status page: pure functions from numbers to inline SVG.

Every builder returns a SafeString that a template can print as-is: the markup is generated
here, every label is escaped, and nothing refers to a script, a font or any other resource,
so the pages render on a machine without internet access.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

SVG_NS = "http://www.w3.org/2000/svg"

STATUS_COLORS = {"up": "#2f9e5b", "degraded": "#e0a400", "down": "#d64545"}
LINE_COLOR = "#3b6fd8"
AREA_OPACITY = "0.18"
AXIS_COLOR = "#9aa3ad"
TEXT_COLOR = "#5b6470"

# Daily uptime cells, as public status pages colour them (first threshold that holds).
UPTIME_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (99.9, "green"),
    (99.0, "yellow"),
    (95.0, "orange"),
)
UPTIME_COLORS = {
    "green": "#2fb463",
    "yellow": "#e5c22b",
    "orange": "#f08a24",
    "red": "#d64545",
    "grey": "#c9ced6",
}


# --- shared pieces ----------------------------------------------------------------------------


def _num(value: float) -> str:
    """Coordinates with at most two decimals, so the markup stays small."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _svg(
    body: str, *, width: float, height: float, label: str, css_class: str, **attrs: str
) -> SafeString:
    extra = "".join(f' {name.replace("_", "-")}="{escape(value)}"' for name, value in attrs.items())
    text = escape(label)
    # Safe: built here from numbers and escaped labels only.
    return mark_safe(
        f'<svg xmlns="{SVG_NS}" class="{css_class}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}" role="img" aria-label="{text}"{extra}>'
        f"<title>{text}</title>{body}</svg>"
    )


def _no_data(width: float, height: float) -> str:
    return (
        f'<text x="{_num(width / 2)}" y="{_num(height / 2 + 4)}" text-anchor="middle" '
        f'font-size="11" fill="{TEXT_COLOR}">no data</text>'
    )


def percent_label(percent: float) -> str:
    """Two decimals, rounded down: 99.899 reads 99.89, never a 99.90 that the colour denies."""
    return f"{math.floor(percent * 100 + 1e-9) / 100:.2f}"


# --- sparkline --------------------------------------------------------------------------------


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Contiguous stretches of known values: a missing hour is a gap, not a drop to zero."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((i, value))
    return [run for run in runs if run]


def sparkline(
    values: Sequence[float | None], *, label: str, width: float = 120, height: float = 28
) -> SafeString:
    """An area chart of `values`, oldest left, scaled to their maximum; None leaves a gap."""
    known = [v for v in values if v is not None]
    if not known:
        return _svg(
            _no_data(width, height), width=width, height=height, label=label, css_class="sparkline"
        )
    top = max(known) or 1.0
    step = width / max(len(values) - 1, 1)
    pad = 2.0  # keeps the line's stroke inside the box at the maximum

    def point(i: int, v: float) -> tuple[float, float]:
        return i * step, height - pad - (height - 2 * pad) * v / top

    body = "".join(_run_markup([point(i, v) for i, v in run], height) for run in _runs(values))
    return _svg(body, width=width, height=height, label=label, css_class="sparkline")


def _run_markup(points: list[tuple[float, float]], height: float) -> str:
    if len(points) == 1:
        (x, y) = points[0]
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="1.5" fill="{LINE_COLOR}"/>'
    line = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    first, last = points[0][0], points[-1][0]
    area = (
        f"M{_num(first)},{_num(height)} L{line.replace(' ', ' L')} L{_num(last)},{_num(height)} Z"
    )
    return (
        f'<path d="{area}" fill="{LINE_COLOR}" fill-opacity="{AREA_OPACITY}" stroke="none"/>'
        f'<polyline points="{line}" fill="none" stroke="{LINE_COLOR}" stroke-width="1.5"/>'
    )


# --- stacked bars -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StackedBar:
    """One bar: checks of one hour (or day) by outcome."""

    label: str
    up: int = 0
    degraded: int = 0
    down: int = 0

    @property
    def total(self) -> int:
        return self.up + self.degraded + self.down

    @property
    def tooltip(self) -> str:
        return f"{self.label}: {self.up} up, {self.degraded} degraded, {self.down} down"


def stacked_bars(
    bars: Sequence[StackedBar], *, label: str, width: float = 720, height: float = 160
) -> SafeString:
    """Up, degraded and down stacked per bar (down on top, where the eye looks first), with
    the maximum on the left and the first and last labels under the axis."""
    plot = height - 16  # room for the labels under the axis
    top = max((bar.total for bar in bars), default=0)
    if not top:
        body = _no_data(width, plot) + _axis(width, plot)
        return _svg(body, width=width, height=height, label=label, css_class="stacked-bars")
    slot = width / len(bars)
    body = "".join(_bar(bar, i * slot, slot, plot, top) for i, bar in enumerate(bars))
    body += _axis(width, plot) + _bar_labels(bars, width, height, top)
    return _svg(body, width=width, height=height, label=label, css_class="stacked-bars")


def _bar(bar: StackedBar, x: float, slot: float, plot: float, top: int) -> str:
    gap = min(2.0, slot * 0.2)
    y, rects = plot, []
    for outcome in ("up", "degraded", "down"):
        count = getattr(bar, outcome)
        if not count:
            continue
        h = plot * count / top
        y -= h
        rects.append(
            f'<rect class="bar-{outcome}" x="{_num(x + gap / 2)}" y="{_num(y)}" '
            f'width="{_num(slot - gap)}" height="{_num(h)}" fill="{STATUS_COLORS[outcome]}"/>'
        )
    return f'<g class="bar"><title>{escape(bar.tooltip)}</title>{"".join(rects)}</g>'


def _axis(width: float, plot: float) -> str:
    y = _num(plot)
    return f'<line x1="0" y1="{y}" x2="{_num(width)}" y2="{y}" stroke="{AXIS_COLOR}"/>'


def _bar_labels(bars: Sequence[StackedBar], width: float, height: float, top: int) -> str:
    style = f'font-size="10" fill="{TEXT_COLOR}"'
    return (
        f'<text x="2" y="10" {style}>{top}</text>'
        f'<text x="0" y="{_num(height - 3)}" {style}>{escape(bars[0].label)}</text>'
        f'<text x="{_num(width)}" y="{_num(height - 3)}" text-anchor="end" {style}>'
        f"{escape(bars[-1].label)}</text>"
    )


# --- uptime bar -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayUptime:
    """Checks of one UTC day: `good` (up or degraded) of `total` (maintenance left out)."""

    day: date
    good: int = 0
    total: int = 0

    @property
    def percent(self) -> float | None:
        # 100 * good first: exact for the integers it starts from, so 999/1000 is exactly 99.9.
        return 100 * self.good / self.total if self.total else None


def uptime_level(percent: float | None) -> str:
    if percent is None:
        return "grey"
    for threshold, level in UPTIME_THRESHOLDS:
        if percent >= threshold:
            return level
    return "red"


def uptime_tooltip(day: date, percent: float | None) -> str:
    if percent is None:
        return f"{day:%Y-%m-%d}: no data"
    return f"{day:%Y-%m-%d}: {percent_label(percent)} % up"


def uptime_bar(
    days: Sequence[DayUptime], *, label: str, cell: float = 6, gap: float = 2, height: float = 28
) -> SafeString:
    """One cell per day, oldest left, coloured by uptime_level, each with its tooltip. It
    stretches to the width of its container (preserveAspectRatio none)."""
    cells = "".join(_cell(day, i * (cell + gap), cell, height) for i, day in enumerate(days))
    width = max(len(days) * (cell + gap) - gap, cell)
    return _svg(
        cells, width=width, height=height, label=label, css_class="uptime-bar",
        preserveAspectRatio="none",
    )  # fmt: skip


def _cell(day: DayUptime, x: float, cell: float, height: float) -> str:
    percent = day.percent
    level = uptime_level(percent)
    return (
        f'<rect class="cell cell-{level}" data-day="{day.day:%Y-%m-%d}" x="{_num(x)}" y="0" '
        f'width="{_num(cell)}" height="{_num(height)}" rx="1.5" fill="{UPTIME_COLORS[level]}">'
        f"<title>{escape(uptime_tooltip(day.day, percent))}</title></rect>"
    )


# --- budget bar -------------------------------------------------------------------------------


def budget_bar(
    remaining_percent: float | None, *, width: float = 100, height: float = 10
) -> SafeString:
    """Error budget left, as a filled bar: green above half, yellow above a quarter, red below."""
    if remaining_percent is None:
        label = "Error budget: not evaluated yet"
        body = (
            f'<rect width="{_num(width)}" height="{_num(height)}" fill="{UPTIME_COLORS["grey"]}"/>'
        )
        return _svg(body, width=width, height=height, label=label, css_class="budget-bar")
    left = min(max(remaining_percent, 0.0), 100.0)
    color = "green" if left > 50 else "yellow" if left > 25 else "red"
    body = (
        f'<rect width="{_num(width)}" height="{_num(height)}" fill="#e6e9ed"/>'
        f'<rect class="budget-{color}" width="{_num(width * left / 100)}" height="{_num(height)}" '
        f'fill="{UPTIME_COLORS[color]}"/>'
    )
    label = f"Error budget: {remaining_percent:.1f} % left"
    return _svg(body, width=width, height=height, label=label, css_class="budget-bar")
