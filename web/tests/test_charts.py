"""The SVG chart builders: well-formed SVG, escaped labels, empty data, uptime colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest

from web import charts

NS = {"svg": charts.SVG_NS}
HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{{{charts.SVG_NS}}}svg"
    return root


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{{{charts.SVG_NS}}}title")]


# --- sparkline --------------------------------------------------------------------------------


def test_a_sparkline_draws_an_area_and_a_line():
    root = parse(charts.sparkline([10.0, 20.0, 15.0, 40.0], label="api"))
    assert root.get("class") == "sparkline"
    assert len(root.findall("svg:path", NS)) == 1
    points = root.find("svg:polyline", NS).get("points").split()
    assert len(points) == 4
    # The maximum touches the top (less the stroke's padding), the x axis spans the width.
    ys = [float(p.split(",")[1]) for p in points]
    assert min(ys) == pytest.approx(2.0)
    assert float(points[-1].split(",")[0]) == pytest.approx(120)


def test_a_missing_hour_is_a_gap_not_a_zero():
    root = parse(charts.sparkline([10.0, 12.0, None, 11.0, 9.0], label="api"))
    assert len(root.findall("svg:polyline", NS)) == 2


def test_a_lone_value_is_a_dot():
    root = parse(charts.sparkline([None, 5.0, None], label="api"))
    assert len(root.findall("svg:circle", NS)) == 1
    assert root.findall("svg:polyline", NS) == []


@pytest.mark.parametrize("values", [[], [None, None], [0.0, 0.0]])
def test_a_sparkline_without_data_is_still_valid_svg(values):
    root = parse(charts.sparkline(values, label="api"))
    text = "".join(root.itertext())
    assert ("no data" in text) == (not any(v is not None for v in values))


def test_a_sparkline_escapes_its_label():
    svg = charts.sparkline([1.0, 2.0], label=HOSTILE)
    assert "<script>" not in svg
    root = parse(svg)
    assert titles(root)[0].startswith(HOSTILE)
    assert root.get("aria-label").startswith(HOSTILE)


def test_a_sparkline_gives_its_scale_on_hover():
    root = parse(charts.sparkline([120.0, None, 35.5, 1800.0], label="api"))
    assert titles(root) == ["api (min 35.5 ms, max 1.8k ms)"]


# --- stacked bars -----------------------------------------------------------------------------


def test_stacked_bars_stack_each_outcome_with_a_tooltip():
    bars = [charts.StackedBar("10:00", up=50, down=10), charts.StackedBar("11:00", up=60)]
    root = parse(charts.stacked_bars(bars, label="checks"))
    groups = root.findall("svg:g", NS)
    assert len(groups) == 2
    assert titles(groups[0])[0] == "10:00: 50 up, 0 degraded, 10 down"
    first = {r.get("class"): float(r.get("height")) for r in groups[0].findall("svg:rect", NS)}
    assert set(first) == {"bar-up", "bar-down"}
    # The axis' top is the round step above the tallest bar (60 → 60: steps of 20); the plot
    # is 170 less 8 above and 18 below; heights are proportional.
    plot = 170 - 8 - 18
    second = groups[1].find("svg:rect", NS)
    assert float(second.get("height")) == pytest.approx(plot)
    assert first["bar-down"] == pytest.approx(plot / 6)


def texts(root: ET.Element) -> list[tuple[float, float, str]]:
    return [
        (float(t.get("x")), float(t.get("y")), t.text or "")
        for t in root.iter(f"{{{charts.SVG_NS}}}text")
    ]


def test_stacked_bars_have_a_value_axis_left_of_the_bars():
    bars = [charts.StackedBar(f"{h:02d}:00", up=h * 10 + 5) for h in range(24)]
    root = parse(charts.stacked_bars(bars, label="checks"))
    labels = {text: (x, y) for x, y, text in texts(root)}
    # 235 at most: round steps of 50 up to 250, each with a gridline.
    for value in ("0", "50", "100", "150", "200", "250"):
        assert value in labels
    grid = root.findall("svg:line[@class='chart-grid']", NS)
    assert len(grid) == 6
    # Every label of the value axis ends left of the first bar: none is drawn over a bar.
    first_bar = min(float(r.get("x")) for r in root.iter(f"{{{charts.SVG_NS}}}rect"))
    for value in ("0", "250"):
        x, _ = labels[value]
        assert x < first_bar
    # A few time labels, the first and the last among them.
    times = [text for _, _, text in texts(root) if ":" in text]
    assert times[0] == "00:00" and times[-1] == "23:00"
    assert 3 <= len(times) <= 6


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (7, [0, 2, 4, 6, 8]),
        (100, [0, 20, 40, 60, 80, 100]),
        (60, [0, 20, 40, 60]),
        (235, [0, 50, 100, 150, 200, 250]),
        (0.3, [0, 0.1, 0.2, 0.3]),
        (0, [0, 1]),
    ],
)
def test_value_axes_use_round_steps(top, ticks):
    assert charts.nice_ticks(top) == pytest.approx(ticks)


def test_a_line_chart_draws_gaps_a_legend_and_a_reference():
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    times = [start + timedelta(minutes=15 * i) for i in range(4)]
    svg = charts.line_chart(
        times,
        [
            charts.Series("p50", [10.0, None, 30.0, 40.0], css_class="series-p50"),
            charts.Series("p95", [50.0, 60.0, 70.0, 80.0], css_class="series-p95"),
        ],
        label="latency",
        start=start,
        end=start + timedelta(hours=1),
        unit=" ms",
        reference=(100.0, "threshold"),
    )
    root = parse(svg)
    p50 = root.findall("svg:g/svg:*[@class='series-p50']", NS)
    assert [e.tag.split("}")[1] for e in p50] == ["circle", "polyline"]  # a gap after 10
    (p95,) = root.findall("svg:g/svg:polyline[@class='series-p95']", NS)
    assert len(p95.get("points").split()) == 4
    words = [text for _, _, text in texts(root)]
    assert {"p50", "p95", "threshold", "100 ms", "10:00", "11:00"} <= set(words)


def test_a_line_chart_below_zero_keeps_zero_on_its_axis():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    svg = charts.line_chart(
        [start, start + timedelta(days=1)],
        [charts.Series("budget", [40.0, -25.0])],
        label="budget",
        start=start,
        end=start + timedelta(days=2),
    )
    words = [text for _, _, text in texts(parse(svg))]
    assert words[:5] == ["-40", "-20", "0", "20", "40"]


def test_a_line_chart_without_points_says_so():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    root = parse(
        charts.line_chart([], [], label="empty", start=start, end=start + timedelta(hours=1))
    )
    assert "no data" in "".join(root.itertext())


def test_the_heartbeat_keeps_the_newest_check_at_the_right():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    beats = [
        charts.Beat(start + timedelta(minutes=i), "down" if i == 4 else "up", f"check {i}")
        for i in range(5)
    ]
    root = parse(charts.heartbeat_bar(beats, label="last checks", slots=10))
    cells = root.findall("svg:rect", NS)
    assert [c.get("class") for c in cells][-1] == "beat beat-down"
    assert float(cells[-1].get("x")) == pytest.approx(9 * 8)  # the tenth slot
    assert titles(cells[0]) == ["check 0"]


def test_badges_are_standalone_svg_with_escaped_words():
    svg = charts.badge("<api>", "99.95 %", "green")
    root = parse(svg)
    assert root.get("class") is None  # no page stylesheet needed
    assert titles(root) == ["<api>: 99.95 %"]
    assert "<api>" not in svg


@pytest.mark.parametrize("bars", [[], [charts.StackedBar("10:00")]])
def test_stacked_bars_without_checks_say_so(bars):
    root = parse(charts.stacked_bars(bars, label="checks"))
    assert "no data" in "".join(root.itertext())
    assert root.findall("svg:g", NS) == []


def test_stacked_bars_escape_their_labels():
    svg = charts.stacked_bars([charts.StackedBar(HOSTILE, up=1)], label=HOSTILE)
    assert "<script>" not in svg
    root = parse(svg)
    assert titles(root)[0] == HOSTILE
    assert f"{HOSTILE}: 1 up, 0 degraded, 0 down" in titles(root)


# --- uptime bar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("good", "total", "level"),
    [
        (1000, 1000, "green"),
        (999, 1000, "green"),  # 99.9 % exactly
        (9989, 10000, "yellow"),  # 99.89 %
        (99, 100, "yellow"),  # 99 % exactly
        (9899, 10000, "orange"),
        (95, 100, "orange"),  # 95 % exactly
        (9499, 10000, "red"),
        (0, 5, "red"),
        (0, 0, "grey"),  # no checks that day
    ],
)
def test_uptime_cells_are_coloured_by_threshold(good, total, level):
    assert charts.uptime_level(charts.DayUptime(date(2026, 11, 20), good, total).percent) == level


def test_the_uptime_bar_has_a_cell_and_a_tooltip_per_day():
    first = date(2026, 8, 23)
    days = [charts.DayUptime(first + timedelta(days=i), 9995, 10000) for i in range(89)]
    days.append(charts.DayUptime(date(2026, 11, 20)))
    root = parse(charts.uptime_bar(days, label="api"))
    cells = root.findall("svg:rect", NS)
    assert len(cells) == 90
    assert cells[0].get("class") == "cell cell-green"
    assert cells[0].get("data-day") == "2026-08-23"
    assert titles(cells[0]) == ["2026-08-23: 99.95 % up"]
    assert cells[-1].get("class") == "cell cell-grey"
    assert titles(cells[-1]) == ["2026-11-20: no data"]


def test_a_percent_is_never_rounded_up_across_a_threshold():
    assert charts.percent_label(99.8999) == "99.89"
    assert charts.percent_label(99.9999) == "99.999"  # three decimals where two read 100
    assert charts.percent_label(100.0) == "100.00"
    assert charts.uptime_tooltip(date(2026, 11, 20), 100 * 1999 / 2000) == "2026-11-20: 99.95 % up"


def test_the_uptime_bar_escapes_its_label_and_handles_no_days():
    svg = charts.uptime_bar([], label=HOSTILE)
    assert "<script>" not in svg
    root = parse(svg)
    assert titles(root) == [HOSTILE]
    assert root.findall("svg:rect", NS) == []


# --- budget bar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "css", "width"),
    [(80.0, "budget-green", 80), (30.0, "budget-yellow", 30), (-20.0, "budget-red", 0)],
)
def test_the_budget_bar_fills_with_what_is_left(left, css, width):
    root = parse(charts.budget_bar(left))
    fill = root.findall("svg:rect", NS)[1]
    assert fill.get("class") == css
    assert float(fill.get("width")) == pytest.approx(width)


def test_an_unevaluated_budget_is_grey():
    root = parse(charts.budget_bar(None))
    assert titles(root) == ["Error budget: not evaluated yet"]
