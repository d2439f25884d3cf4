"""SVG charts of the console and the status page: pure functions from numbers to inline SVG.

Every builder returns a SafeString that a template can print as-is: the markup is generated
here, every label is escaped, and nothing refers to a script, a font or any other resource,
so the pages render on a machine without internet access. Colours are presentation attributes
that the pages' stylesheet overrides by class (the dark theme); a chart copied elsewhere keeps
its light colours.

Charts with axes keep their labels outside the plot: the value labels sit in a left margin and
the time labels under the axis, so no label is ever drawn over a bar or a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from noc.formatting import compact_number, percent_label

SVG_NS = "http://www.w3.org/2000/svg"

STATUS_COLORS = {
    "up": "#2f9e5b",
    "degraded": "#e0a400",
    "down": "#d64545",
    "missed": "#9aa3ad",
    "maintenance": "#3b6fd8",
}
LINE_COLOR = "#3b6fd8"
AREA_OPACITY = "0.18"
AXIS_COLOR = "#9aa3ad"
GRID_COLOR = "#e1e5ea"
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

__all__ = [
    "SVG_NS",
    "Beat",
    "DayUptime",
    "Series",
    "StackedBar",
    "badge",
    "budget_bar",
    "heartbeat_bar",
    "line_chart",
    "nice_ticks",
    "percent_label",
    "sparkline",
    "stacked_bars",
    "uptime_bar",
    "uptime_level",
    "uptime_tooltip",
]


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


def _no_data(width: float, height: float, x0: float = 0) -> str:
    return (
        f'<text class="chart-text" x="{_num(x0 + (width - x0) / 2)}" y="{_num(height / 2 + 4)}" '
        f'text-anchor="middle" font-size="11" fill="{TEXT_COLOR}">no data</text>'
    )


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 × 10ⁿ) up to at least `top`: the smallest such step
    that needs at most `count` + 1 of them."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(top / (count + 1)))
    for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        step = m * magnitude
        steps = math.ceil(top / step - 1e-9)
        if steps <= count + 1:
            break
    return [round(i * step, 10) for i in range(steps + 1)]


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart with axes: a left margin for value labels, a bottom one for
    time labels."""

    width: float
    height: float
    left: float = 44
    right: float = 8
    top: float = 8
    bottom: float = 18

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def baseline(self) -> float:
        return self.top + self.plot_height

    def y(self, value: float, low: float, high: float) -> float:
        share = (value - low) / (high - low) if high > low else 0.0
        return self.baseline - self.plot_height * share


def _value_axis(frame: _Frame, ticks: list[float], unit: str) -> str:
    """Gridlines at each tick and the tick's label in the left margin."""
    low, high = ticks[0], ticks[-1]
    parts = []
    for tick in ticks:
        y = _num(frame.y(tick, low, high))
        parts.append(
            f'<line class="chart-grid" x1="{_num(frame.left)}" y1="{y}" '
            f'x2="{_num(frame.width - frame.right)}" y2="{y}" stroke="{GRID_COLOR}"/>'
            f'<text class="chart-text" x="{_num(frame.left - 4)}" y="{y}" dy="3.5" '
            f'text-anchor="end" font-size="10" fill="{TEXT_COLOR}">'
            f"{escape(compact_number(tick))}{escape(unit)}</text>"
        )
    baseline = _num(frame.y(max(low, 0.0) if low < 0 < high else low, low, high))
    parts.append(
        f'<line class="chart-axis" x1="{_num(frame.left)}" y1="{baseline}" '
        f'x2="{_num(frame.width - frame.right)}" y2="{baseline}" stroke="{AXIS_COLOR}"/>'
    )
    return "".join(parts)


def _time_labels(frame: _Frame, labels: Sequence[tuple[float, str]]) -> str:
    """Labels under the plot at x positions; the first is left-aligned and the last
    right-aligned so neither leaves the chart."""
    parts = []
    y = _num(frame.height - 4)
    for i, (x, text) in enumerate(labels):
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        parts.append(
            f'<text class="chart-text" x="{_num(x)}" y="{y}" text-anchor="{anchor}" '
            f'font-size="10" fill="{TEXT_COLOR}">{escape(text)}</text>'
        )
    return "".join(parts)


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
    values: Sequence[float | None],
    *,
    label: str,
    unit: str = " ms",
    width: float = 120,
    height: float = 28,
) -> SafeString:
    """An area chart of `values`, oldest left, scaled to their maximum; None leaves a gap. Its
    title (shown on hover) gives the scale: the lowest and highest value drawn."""
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
    scale = f"{label} (min {compact_number(min(known))}{unit}, max {compact_number(top)}{unit})"
    return _svg(body, width=width, height=height, label=scale, css_class="sparkline")


def _run_markup(points: list[tuple[float, float]], height: float) -> str:
    if len(points) == 1:
        (x, y) = points[0]
        return (
            f'<circle class="spark-line" cx="{_num(x)}" cy="{_num(y)}" r="1.5" '
            f'fill="{LINE_COLOR}"/>'
        )
    line = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
    first, last = points[0][0], points[-1][0]
    area = (
        f"M{_num(first)},{_num(height)} L{line.replace(' ', ' L')} L{_num(last)},{_num(height)} Z"
    )
    return (
        f'<path class="spark-area" d="{area}" fill="{LINE_COLOR}" fill-opacity="{AREA_OPACITY}" '
        f'stroke="none"/>'
        f'<polyline class="spark-line" points="{line}" fill="none" stroke="{LINE_COLOR}" '
        f'stroke-width="1.5"/>'
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
    bars: Sequence[StackedBar],
    *,
    label: str,
    width: float = 720,
    height: float = 170,
    time_labels: int = 5,
) -> SafeString:
    """Up, degraded and down stacked per bar (down on top, where the eye looks first), with a
    value axis (gridlines, round steps) in the left margin and a few time labels under it."""
    frame = _Frame(width, height)
    top = max((bar.total for bar in bars), default=0)
    if not top:
        body = _no_data(width, frame.baseline, frame.left) + _value_axis(frame, [0.0, 1.0], "")
        return _svg(body, width=width, height=height, label=label, css_class="stacked-bars")
    ticks = nice_ticks(top)
    slot = frame.plot_width / len(bars)
    body = _value_axis(frame, ticks, "")
    body += "".join(
        _bar(bar, frame.left + i * slot, slot, frame, ticks[-1]) for i, bar in enumerate(bars)
    )
    body += _time_labels(frame, _spread_labels(bars, frame, slot, time_labels))
    return _svg(body, width=width, height=height, label=label, css_class="stacked-bars")


def _spread_labels(
    bars: Sequence[StackedBar], frame: _Frame, slot: float, count: int
) -> list[tuple[float, str]]:
    """About `count` bar labels evenly spread, the first and the last always included."""
    if len(bars) == 1:
        return [(frame.left, bars[0].label)]
    every = max(1, math.ceil((len(bars) - 1) / max(count - 1, 1)))
    picked = sorted({*range(0, len(bars), every), len(bars) - 1})
    if len(picked) > 2 and picked[-1] - picked[-2] < every / 2:
        picked.pop(-2)  # too close to the last to fit beside it
    labels = []
    for i in picked:
        if i == 0:
            x = frame.left
        elif i == len(bars) - 1:
            x = frame.left + frame.plot_width
        else:
            x = frame.left + (i + 0.5) * slot
        labels.append((x, bars[i].label))
    return labels


def _bar(bar: StackedBar, x: float, slot: float, frame: _Frame, top: float) -> str:
    gap = min(2.0, slot * 0.2)
    y, rects = frame.baseline, []
    for outcome in ("up", "degraded", "down"):
        count = getattr(bar, outcome)
        if not count:
            continue
        h = frame.plot_height * count / top
        y -= h
        rects.append(
            f'<rect class="bar-{outcome}" x="{_num(x + gap / 2)}" y="{_num(y)}" '
            f'width="{_num(slot - gap)}" height="{_num(h)}" fill="{STATUS_COLORS[outcome]}"/>'
        )
    return f'<g class="bar"><title>{escape(bar.tooltip)}</title>{"".join(rects)}</g>'


# --- line chart -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line: a value (or None, a gap) per time of the chart."""

    name: str
    values: Sequence[float | None]
    color: str = LINE_COLOR
    css_class: str = "series"


def line_chart(
    times: Sequence[datetime],
    series: Sequence[Series],
    *,
    label: str,
    start: datetime,
    end: datetime,
    unit: str = "",
    reference: tuple[float, str] | None = None,
    width: float = 720,
    height: float = 200,
    time_format: str = "%H:%M",
) -> SafeString:
    """Lines over [start, end], each point at its time, with a value axis from 0 (or below,
    for negative values) to a round top, gridlines, time labels and a legend. `reference`
    draws a dashed horizontal line (a threshold, a target) with its label."""
    frame = _Frame(width, height, top=18)
    known = [v for s in series for v in s.values if v is not None]
    if reference is not None:
        known.append(reference[0])
    if not known or not times:
        body = _no_data(width, frame.baseline, frame.left) + _value_axis(frame, [0.0, 1.0], "")
        return _svg(body, width=width, height=height, label=label, css_class="line-chart")
    ticks = _signed_ticks(min(known), max(known))
    span = (end - start).total_seconds() or 1.0

    def x_of(moment: datetime) -> float:
        share = min(max((moment - start).total_seconds() / span, 0.0), 1.0)
        return frame.left + frame.plot_width * share

    body = _value_axis(frame, ticks, unit)
    if reference is not None:
        body += _reference_line(frame, ticks, *reference)
    for line in series:
        points = {
            i: (x_of(times[i]), frame.y(v, ticks[0], ticks[-1]))
            for i, v in enumerate(line.values)
            if v is not None
        }
        body += _polylines(line, points)
    body += _legend(frame, series)
    moments = [start + timedelta(seconds=span * i / 4) for i in range(5)]
    body += _time_labels(
        frame, [(x_of(m), timezone.localtime(m).strftime(time_format)) for m in moments]
    )
    return _svg(body, width=width, height=height, label=label, css_class="line-chart")


def _signed_ticks(low: float, high: float) -> list[float]:
    if low >= 0:
        return nice_ticks(high)
    # Negative values (an overspent budget): round steps over the whole span, zero among them.
    step = nice_ticks(max(high, 0.0) - low)[1]
    first = math.floor(low / step + 1e-9)
    last = max(math.ceil(high / step - 1e-9), 0)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _polylines(line: Series, points: dict[int, tuple[float, float]]) -> str:
    parts = []
    for run in _runs(line.values):
        coords = [points[i] for i, _ in run]
        if len(coords) == 1:
            x, y = coords[0]
            parts.append(
                f'<circle class="{line.css_class}" cx="{_num(x)}" cy="{_num(y)}" r="2" '
                f'fill="{line.color}"/>'
            )
            continue
        text = " ".join(f"{_num(x)},{_num(y)}" for x, y in coords)
        parts.append(
            f'<polyline class="{line.css_class}" points="{text}" fill="none" '
            f'stroke="{line.color}" stroke-width="1.6" stroke-linejoin="round"/>'
        )
    return f'<g class="line"><title>{escape(line.name)}</title>{"".join(parts)}</g>'


def _reference_line(frame: _Frame, ticks: list[float], value: float, text: str) -> str:
    y = _num(frame.y(value, ticks[0], ticks[-1]))
    return (
        f'<line class="chart-reference" x1="{_num(frame.left)}" y1="{y}" '
        f'x2="{_num(frame.width - frame.right)}" y2="{y}" stroke="{STATUS_COLORS["down"]}" '
        f'stroke-dasharray="4 3"/>'
        f'<text class="chart-text" x="{_num(frame.width - frame.right)}" y="{y}" dy="-3" '
        f'text-anchor="end" font-size="10" fill="{TEXT_COLOR}">{escape(text)}</text>'
    )


def _legend(frame: _Frame, series: Sequence[Series]) -> str:
    parts, x = [], frame.left
    for line in series:
        parts.append(
            f'<rect x="{_num(x)}" y="4" width="10" height="3" fill="{line.color}" '
            f'class="{line.css_class}-key"/>'
            f'<text class="chart-text" x="{_num(x + 14)}" y="9" font-size="10" '
            f'fill="{TEXT_COLOR}">{escape(line.name)}</text>'
        )
        x += 24 + 6.2 * len(line.name)
    return "".join(parts)


# --- heartbeat bar ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Beat:
    """One check result as a heartbeat cell."""

    time: datetime
    status: str  # up, degraded, down, missed or maintenance
    tooltip: str


def heartbeat_bar(
    beats: Sequence[Beat], *, label: str, slots: int = 90, cell: float = 6, gap: float = 2
) -> SafeString:
    """The last `slots` checks, oldest left, newest at the right end; empty slots on the left
    when there were fewer checks. Each cell is coloured by its outcome and has a tooltip."""
    height = 26
    shown = list(beats)[-slots:]
    offset = slots - len(shown)
    cells = "".join(
        f'<rect class="beat beat-{beat.status}" x="{_num((offset + i) * (cell + gap))}" y="0" '
        f'width="{_num(cell)}" height="{height}" rx="1.5" '
        f'fill="{STATUS_COLORS.get(beat.status, AXIS_COLOR)}">'
        f"<title>{escape(beat.tooltip)}</title></rect>"
        for i, beat in enumerate(shown)
    )
    width = slots * (cell + gap) - gap
    return _svg(
        cells, width=width, height=height, label=label, css_class="heartbeat",
        preserveAspectRatio="none",
    )  # fmt: skip


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


def uptime_bar_compact(
    days: Sequence[DayUptime], *, label: str, cell: float = 6, gap: float = 2, height: float = 28
) -> SafeString:
    """The same bar in a few elements, for a page of many services (90 cells with a tooltip
    each are 13 kB a service): the green days are one path, the days without data another,
    each with a tooltip counting them; a day below green keeps its own cell and tooltip."""
    paths: dict[str, list[str]] = {"green": [], "grey": []}
    cells = []
    shape = f" 0h{_num(cell)}v{_num(height)}h-{_num(cell)}z"
    for i, day in enumerate(days):
        x = i * (cell + gap)
        level = uptime_level(day.percent)
        if level in paths:
            paths[level].append(f"M{_num(x)}{shape}")
        else:
            cells.append(_cell(day, x, cell, height))
    tooltips = {
        "green": f"{UPTIME_THRESHOLDS[0][0]:g} % up or more",
        "grey": "no data",
    }
    body = "".join(
        f'<path class="cells cells-{level}" fill="{UPTIME_COLORS[level]}" d="{"".join(shapes)}">'
        f"<title>{_days(len(shapes))}: {tooltips[level]}</title></path>"
        for level, shapes in paths.items()
        if shapes
    )
    width = max(len(days) * (cell + gap) - gap, cell)
    return _svg(
        body + "".join(cells), width=width, height=height, label=label,
        css_class="uptime-bar", preserveAspectRatio="none",
    )  # fmt: skip


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


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
            f'<rect class="budget-empty" width="{_num(width)}" height="{_num(height)}" '
            f'fill="{UPTIME_COLORS["grey"]}"/>'
        )
        return _svg(body, width=width, height=height, label=label, css_class="budget-bar")
    left = min(max(remaining_percent, 0.0), 100.0)
    color = "green" if left > 50 else "yellow" if left > 25 else "red"
    body = (
        f'<rect class="budget-track" width="{_num(width)}" height="{_num(height)}" fill="#e6e9ed"/>'
        f'<rect class="budget-{color}" width="{_num(width * left / 100)}" height="{_num(height)}" '
        f'fill="{UPTIME_COLORS[color]}"/>'
    )
    label = f"Error budget: {remaining_percent:.1f} % left"
    return _svg(body, width=width, height=height, label=label, css_class="budget-bar")


# --- badges -----------------------------------------------------------------------------------

BADGE_COLORS = {
    "green": "#2f9e5b",
    "yellow": "#c99700",
    "orange": "#e8730c",
    "red": "#d64545",
    "blue": "#3b6fd8",
    "grey": "#6e7781",
}


def _text_width(text: str) -> float:
    """Width of `text` at 11 px Verdana, estimated per character class (no font metrics here):
    enough for the badge's box to hold it."""
    narrow, wide = set("ijlt.,:;!|' "), set("mwMW%@")
    return sum(4.0 if c in narrow else 10.0 if c in wide else 7.0 for c in text) + 10


def badge(label: str, message: str, color: str) -> str:
    """A standalone flat badge, `label | message`, as Uptime Kuma and Gatus serve them: a
    complete SVG document with its own colours and fonts (no page stylesheet applies)."""
    left, right = _text_width(label), _text_width(message)
    width = left + right
    fill = BADGE_COLORS.get(color, BADGE_COLORS["grey"])
    text_label, text_message = escape(label), escape(message)
    return (
        f'<svg xmlns="{SVG_NS}" width="{_num(width)}" height="20" role="img" '
        f'aria-label="{text_label}: {text_message}"><title>{text_label}: {text_message}</title>'
        f'<rect width="{_num(width)}" height="20" rx="3" fill="{fill}"/>'
        f'<rect width="{_num(left)}" height="20" rx="3" fill="#555"/>'
        f'<rect x="{_num(left - 3)}" width="3" height="20" fill="#555"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        f'font-size="11">'
        f'<text x="{_num(left / 2)}" y="14">{text_label}</text>'
        f'<text x="{_num(left + right / 2)}" y="14">{text_message}</text></g></svg>'
    )
