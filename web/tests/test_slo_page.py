"""An SLO's page: SLI against target, the burn-down chart, burn rates per alert rule against
their thresholds (the evaluation's own arithmetic), alerts and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.choices import Role
from observability.actions import metric_points_ingest
from observability.points import MetricPoint
from slos import actions
from slos.models import SLOAlert
from slos.tests.test_evaluation import NOW, fill
from web.charts import SVG_NS
from web.queries.slo import rule_burns
from web.tests.helpers import row, svgs


def make_slo(service, **fields):
    fields.setdefault("id", "checkout-availability")
    fields.setdefault("name", "Checkout availability")
    return actions.slo_create(
        actor=None, service=service, sli_type="availability", target="99", **fields
    )


def test_an_unevaluated_slo_has_a_page_that_says_so(console_as, make_service):
    slo = make_slo(make_service(), window="30d")
    response = console_as(Role.VIEWER).get(f"/slos/{slo.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "not evaluated" in html
    assert "Not evaluated yet." in html
    assert len(svgs(html, "line-chart")) == 1  # the burn-down, empty
    # Four rules apply to a 30-day window, each with the workbook's threshold.
    for rule, threshold in (("page-1h-5m", "14.4×"), ("page-6h-30m", "6.0×"),
                            ("ticket-1d-2h", "3.0×"), ("ticket-3d-6h", "1.0×")):  # fmt: skip
        assert threshold in row(html, "rule", rule)


def test_burn_rates_come_from_the_same_read_as_the_evaluation(make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    # Six hours of checks, the last 30 minutes all failing: the 5-minute and 30-minute burn
    # rates are 100 (100 % errors / 1 % allowed), the hour's 50.
    fill(service, NOW - timedelta(hours=6), 6 * 60, down=lambda i: i >= 330)
    rules, skipped = rule_burns(slo, NOW)
    by_name = {r.rule.name: r for r in rules}
    assert set(by_name) == {"page-1h-5m", "page-6h-30m", "ticket-1d-2h"}
    assert [r.name for r in skipped] == ["ticket-3d-6h"]  # longer than the 24 h window
    page = by_name["page-1h-5m"]
    assert page.short_burn == pytest.approx(100.0)
    assert page.long_burn == pytest.approx(50.0)
    assert page.firing_now
    # Checked against what slos_evaluate stores: its 1-hour burn is the page rule's long one.
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.burn_rate == pytest.approx(page.long_burn)


def test_the_page_shows_history_alerts_and_the_budget_burning_down(console_as, make_service):
    service = make_service(name="Checkout")
    slo = make_slo(service, window="24h")
    fill(service, NOW - timedelta(hours=6), 6 * 60, down=lambda i: i >= 330)
    for minutes in (3, 2, 1, 0):
        actions.slos_evaluate(now=NOW - timedelta(minutes=minutes))
    html = console_as(Role.VIEWER).get(f"/slos/{slo.pk}/").content.decode()
    assert "below target" in html
    assert html.count("<tr><td>20") >= 4  # four evaluations in the history (dates start 20..)
    alert = SLOAlert.objects.filter(slo=slo, state="firing").first()
    assert alert is not None
    assert f'data-alert="{alert.pk}"' in html
    if alert.incident_id:
        assert f'href="/incidents/{alert.incident_id}/"' in html
    (chart,) = svgs(html, "line-chart")
    (budget,) = chart.findall(f".//{{{SVG_NS}}}polyline[@class='series-budget']")
    assert len(budget.get("points").split()) == 2  # 3-minute buckets: the last of each
    assert chart.find(f".//{{{SVG_NS}}}line[@class='chart-reference']") is not None


def test_the_budget_is_rounded_for_people(console_as, make_service):
    slo = make_slo(make_service(), window="30d")
    type(slo).objects.filter(pk=slo.pk).update(
        budget_total_minutes=432.0,
        budget_remaining_minutes=43.19999999999524,
        budget_used_minutes=388.80000000000476,
        budget_remaining_percent=9.999999999998899,
        current_value=99.09111111,
        compliant=True,
        calculated_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    html = console_as(Role.VIEWER).get(f"/slos/{slo.pk}/").content.decode()
    assert "43.2 min (10.0 %)" in html
    assert "388.8 min" in html
    assert "99.091 %" in html
    assert "43.1999" not in html


def test_the_page_costs_the_same_queries_whatever_the_history(console_as, make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    client = console_as(Role.VIEWER)
    client.get(f"/slos/{slo.pk}/")
    with CaptureQueriesContext(connection) as empty:
        client.get(f"/slos/{slo.pk}/")
    fill(service, NOW - timedelta(hours=6), 6 * 60, down=lambda i: i >= 330)
    for minutes in range(10):
        actions.slos_evaluate(now=NOW - timedelta(minutes=minutes))
    with CaptureQueriesContext(connection) as full:
        client.get(f"/slos/{slo.pk}/")
    assert len(full) == len(empty) <= 9


def test_a_metric_slo_about_no_service_has_its_page_and_dashboard_row(console_as, make_application):
    application = make_application("shop")[0]
    # A counter of requests and one of good ones: 100 then 200 requests, 90 then 150 good in
    # the last hour, so its burn rate is (40 / 100) / 1 % = 40.
    ingest(application, [("requests_total", 100, 200), ("good_total", 90, 150)])
    selector = {"application": "shop", "name": "requests_total"}
    slo = actions.slo_create(
        actor=None, id="shop-success", name="Shop success", sli_type="ratio", target="99",
        window="24h", good_metric={**selector, "name": "good_total"}, total_metric=selector,
    )  # fmt: skip
    actions.slos_evaluate(now=NOW)
    viewer = console_as(Role.VIEWER)
    dashboard = viewer.get("/")
    assert dashboard.status_code == 200
    assert 'data-slo="shop-success"' in dashboard.content.decode()  # critical: at risk
    page = viewer.get(f"/slos/{slo.pk}/")
    assert page.status_code == 200
    assert "Ratio of two counters" in page.content.decode()
    rules, _skipped = rule_burns(slo, NOW)
    assert {r.rule.name: r.long_burn for r in rules}["page-1h-5m"] == 40.0


def ingest(application, series: list[tuple[str, float, float]]) -> None:
    points = [
        MetricPoint.at(name, value, time=NOW - timedelta(minutes=minutes), kind="counter")
        for name, first, second in series
        for value, minutes in ((first, 50), (second, 5))
    ]
    result = metric_points_ingest(application=application, points=points)
    assert result.rejected == 0
