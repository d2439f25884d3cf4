"""The dashboard's "Alerts firing" section: the active alerts of the observability app's
rules (made by evaluating real rules on pushed points), within the dashboard's filters, part
of the live refresh, at a fixed number of queries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from noc.formatting import measure_label
from observability import actions
from observability.models import Alert
from observability.tests.fixtures import point
from web.queries import alerts as alert_queries

pytestmark = pytest.mark.django_db


def fire(application, name: str, value: float, *, severity: str = "high", service=None, **labels):
    """A rule on metric `name` that fires at once on the value pushed for it."""
    when = datetime.now(UTC) - timedelta(seconds=5)
    actions.metric_points_ingest(
        application=application, points=[point(name, value, when, **labels)]
    )
    actions.alert_rule_create(
        actor=None, name=f"{name} high", metric=name, aggregation="max", condition="gt",
        threshold=1, window_seconds=300, severity=severity, service=service,
    )  # fmt: skip


def section(html: str) -> str:
    match = re.search(r'<section class="panel" id="alerts-firing">.*?</section>', html, re.DOTALL)
    assert match, "no alerts-firing section"
    return match.group(0)


def test_firing_alerts_are_listed_by_severity_with_their_values(
    viewer_client, application, make_service
):
    api = make_service(name="API")
    fire(application, "queue_depth", 1234.5678, severity="low")
    fire(application, "error_rate", 3.14159, severity="critical", service=api, host="web-1")
    actions.alerts_evaluate()
    assert Alert.objects.filter(status="active").count() == 2

    html = section(viewer_client.get("/").content.decode())
    assert "Alerts firing (2)" in html
    assert html.index("error_rate high") < html.index("queue_depth high")  # critical first
    assert "host=web-1" in html and "application=shop" in html
    assert "3.142" in html and "1,234.6" in html  # rounded for people, stored as pushed
    assert f'href="/services/{api.pk}/"' in html
    assert Alert.objects.get(rule__name="error_rate high").value == 3.14159


def test_without_alerts_the_section_says_so(viewer_client):
    html = section(viewer_client.get("/").content.decode())
    assert "Alerts firing (0)" in html and "No alert firing." in html


def test_resolved_and_pending_alerts_are_not_listed(viewer_client, application):
    fire(application, "disk_full", 5)
    actions.alert_rule_create(
        actor=None, name="slow to fire", metric="disk_full", aggregation="max",
        condition="gt", threshold=1, window_seconds=300, for_seconds=600,
    )  # fmt: skip
    actions.alerts_evaluate()
    assert set(Alert.objects.values_list("status", flat=True)) == {"active", "pending"}
    html = section(viewer_client.get("/").content.decode())
    assert "Alerts firing (1)" in html and "slow to fire" not in html


def test_the_tag_and_critical_filters_keep_the_alerts_of_their_services(
    viewer_client, application, make_service
):
    edge = make_service(name="Edge", tags=["edge"], critical=True)
    core = make_service(name="Core", tags=["core"])
    fire(application, "edge_errors", 9, service=edge)
    fire(application, "core_errors", 9, service=core)
    fire(application, "fleet_errors", 9)  # about no service
    actions.alerts_evaluate()

    every = section(viewer_client.get("/").content.decode())
    assert all(name in every for name in ("edge_errors", "core_errors", "fleet_errors"))
    edge_only = section(viewer_client.get("/?tag=edge").content.decode())
    assert "edge_errors" in edge_only and "core_errors" not in edge_only
    assert "fleet_errors" not in edge_only
    critical = section(viewer_client.get("/?critical=no").content.decode())
    assert "core_errors" in critical and "edge_errors" not in critical


def test_the_section_is_part_of_the_live_refresh(viewer_client, application):
    before = viewer_client.get("/?parts=1").json()["parts"]["sections"]
    assert "No alert firing." in before
    fire(application, "latency_p99", 2.5)
    actions.alerts_evaluate()
    after = viewer_client.get("/?parts=1").json()["parts"]["sections"]
    assert "latency_p99 high" in after and "Alerts firing (1)" in after


def test_only_the_most_severe_are_shown_with_the_total(viewer_client, application, monkeypatch):
    monkeypatch.setattr(alert_queries, "LIMIT", 3)
    for i in range(5):
        fire(application, f"m{i}", 5, severity="critical" if i == 4 else "low")
    actions.alerts_evaluate()
    html = section(viewer_client.get("/").content.decode())
    assert "Alerts firing (5)" in html and "The 3 most severe of 5 shown." in html
    assert html.count("<tr data-alert=") == 3 and "m4 high" in html


def test_the_section_costs_one_query_whatever_the_number_of_alerts(
    viewer_client, application, make_service
):
    service = make_service(name="S", tags=["t"])
    fire(application, "first", 5, service=service)
    actions.alerts_evaluate()
    board_kw = {"tag": "t"}
    from web.queries.dashboard import Filters

    with CaptureQueriesContext(connection) as few:
        assert len(alert_queries.alerts_firing(Filters(**board_kw))) == 1
    for i in range(15):
        fire(application, f"more{i}", 5, service=service, host=f"h{i}")
    actions.alerts_evaluate()
    with CaptureQueriesContext(connection) as many:
        assert len(alert_queries.alerts_firing(Filters(**board_kw))) == 16
    assert len(few) == len(many) == 1


@pytest.mark.parametrize(
    ("value", "label"),
    [(None, "—"), (97, "97"), (97.0, "97"), (0.1234567, "0.123"), (1234.5678, "1,234.6"),
     (-2.5, "-2.5"), (1e6, "1,000,000")],
)  # fmt: skip
def test_measured_values_read_rounded(value, label):
    assert measure_label(value) == label
