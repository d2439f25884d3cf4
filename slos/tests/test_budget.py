"""Budgets, burn rates, alert thresholds and risk, against values computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slos import budget

THIRTY_DAYS = timedelta(days=30)


def test_the_seed_example_30_days_at_99_9_is_43_2_minutes():
    assert budget.budget_minutes(0.999, 30 * 24 * 60) == pytest.approx(43.2)


def test_burn_rate_is_the_error_ratio_over_the_allowed_ratio():
    assert budget.burn_rate(bad=1, total=1000, objective=0.999) == pytest.approx(1.0)
    assert budget.burn_rate(bad=144, total=10_000, objective=0.999) == pytest.approx(14.4)
    assert budget.burn_rate(bad=0, total=0, objective=0.999) is None


@pytest.mark.parametrize(
    ("rule", "threshold"),
    [("page-1h-5m", 14.4), ("page-6h-30m", 6.0), ("ticket-1d-2h", 3.0), ("ticket-3d-6h", 1.0)],
)
def test_the_workbook_thresholds_for_a_30_day_window(rule, threshold):
    found = next(r for r in budget.RULES if r.name == rule)
    assert found.threshold(THIRTY_DAYS) == pytest.approx(threshold)


def test_thresholds_scale_with_the_window_and_never_drop_below_one():
    page = budget.RULES[0]
    assert page.threshold(timedelta(days=7)) == pytest.approx(0.02 * 168)  # 3.36
    assert budget.RULES[3].threshold(timedelta(days=7)) == 1.0  # 0.1 × 7/3 < 1 → 1
    assert [r.name for r in budget.rules_for(timedelta(hours=24))] == [
        "page-1h-5m", "page-6h-30m", "ticket-1d-2h",
    ]  # fmt: skip
    assert budget.rules_for(timedelta(hours=1)) == [budget.RULES[0]]


@pytest.mark.parametrize("rule", budget.RULES, ids=lambda r: r.name)
def test_each_rule_fires_when_both_windows_burn_and_not_when_only_one_does(rule):
    t = rule.threshold(THIRTY_DAYS)
    assert budget.rule_fires(rule, THIRTY_DAYS, t, t)
    assert not budget.rule_fires(rule, THIRTY_DAYS, t, t * 0.99)  # short window cooled off
    assert not budget.rule_fires(rule, THIRTY_DAYS, t * 0.99, t * 10)  # a blip, long window calm


def test_an_alert_clears_only_below_half_its_threshold():
    rule = budget.RULES[0]
    assert not budget.rule_clears(rule, THIRTY_DAYS, 7.3, 1.0)
    assert budget.rule_clears(rule, THIRTY_DAYS, 7.1, 7.1)


@pytest.mark.parametrize(
    ("remaining", "burn", "risk"),
    [
        (100, 0, "none"), (75, 0.99, "none"), (74.9, 0, "low"), (100, 1, "low"),
        (50, 2.99, "low"), (49.9, 0, "medium"), (100, 3, "medium"), (25, 5.99, "medium"),
        (24.9, 0, "high"), (100, 6, "high"), (0.1, 14.3, "high"), (0, 0, "critical"),
        (-5, 0, "critical"), (100, 14.4, "critical"), (80, None, "none"),
    ],
)  # fmt: skip
def test_violation_risk_at_each_boundary(remaining, burn, risk):
    assert budget.violation_risk(remaining, burn) == risk


def test_occurrence_budget_spent_is_the_bad_ratio_over_the_elapsed_window():
    spent = budget.budget_spent(
        objective=0.999, window_minutes=43_200, good=43_178.4, total=43_200,
        elapsed_minutes=43_200, timeslices=False,
    )  # fmt: skip
    assert spent.total_minutes == pytest.approx(43.2)
    assert spent.used_minutes == pytest.approx(21.6)
    assert spent.remaining_percent == pytest.approx(50)


def test_a_sparsely_checked_service_spends_its_budget_by_the_error_ratio_not_the_checks():
    # One check every 5 minutes over 24 h at 99.5 %: 3 failures in 288 checks is 98.96 %, under
    # the target, so the budget (7.2 minutes) is overspent: 3/288 × 1,440 = 15 minutes, not the
    # 3 minutes the 288 minutes that had a check would give.
    spent = budget.budget_spent(
        objective=0.995, window_minutes=1440, good=285, total=288, elapsed_minutes=1440,
        timeslices=False,
    )  # fmt: skip
    assert spent.total_minutes == pytest.approx(7.2)
    assert spent.used_minutes == pytest.approx(15.0)
    assert budget.violation_risk(spent.remaining_percent, 0.0) == "critical"


@pytest.mark.parametrize("checks", [1440, 288, 24])
def test_a_rolling_budget_runs_out_exactly_when_the_sli_reaches_the_target(checks):
    bad = checks * 0.005
    spent = budget.budget_spent(
        objective=0.995, window_minutes=1440, good=checks - bad, total=checks,
        elapsed_minutes=1440, timeslices=False,
    )  # fmt: skip
    assert spent.remaining_minutes == pytest.approx(0, abs=1e-9)


def test_a_calendar_budget_is_charged_for_the_elapsed_part_of_the_period():
    # Ten days into a 30-day month, 0.2 % errors at 99.9 %: 0.002 × 14,400 = 28.8 of 43.2.
    spent = budget.budget_spent(
        objective=0.999, window_minutes=43_200, good=998, total=1000, elapsed_minutes=14_400,
        timeslices=False,
    )  # fmt: skip
    assert spent.used_minutes == pytest.approx(28.8)


def test_timeslice_budget_spent_counts_bad_minutes():
    spent = budget.budget_spent(
        objective=0.999, window_minutes=43_200, good=43_150, total=43_200,
        elapsed_minutes=43_200, timeslices=True,
    )  # fmt: skip
    assert spent.used_minutes == 50
    assert spent.remaining_minutes == pytest.approx(-6.8)


def test_the_forecast_says_when_the_budget_runs_out_at_the_current_burn():
    now = datetime(2026, 11, 1, tzinfo=UTC)
    # 21.6 minutes left at burn 2 on 99.9 %: 2 × 0.001 = 0.002 bad minutes per minute.
    assert budget.exhaustion_forecast(now, 21.6, 2.0, 0.999) == now + timedelta(minutes=10_800)
    assert budget.exhaustion_forecast(now, 21.6, 0.0, 0.999) is None
    assert budget.exhaustion_forecast(now, -1, 3.0, 0.999) == now


def test_calendar_windows_follow_the_time_zone():
    now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    start, end = budget.window_bounds("month", now, ZoneInfo("Europe/Madrid"))
    assert start == datetime.fromisoformat("2026-11-01T00:00:00+01:00")
    assert end == datetime.fromisoformat("2026-12-01T00:00:00+01:00")
    q_start, q_end = budget.window_bounds("quarter", now, ZoneInfo("UTC"))
    assert (q_start.month, q_end.month, q_end.year) == (10, 1, 2027)
    assert budget.window_length("month", now, ZoneInfo("UTC")) == timedelta(days=30)
    r_start, r_end = budget.window_bounds("7d", now, ZoneInfo("UTC"))
    assert r_end - r_start == timedelta(days=7)


def test_a_calendar_month_across_a_daylight_saving_change_has_its_real_length():
    # October 2026 in Madrid ends on winter time: 31 days and one hour.
    now = datetime(2026, 10, 15, 12, tzinfo=UTC)
    length = budget.window_length("month", now, ZoneInfo("Europe/Madrid"))
    assert length == timedelta(days=31, hours=1)
