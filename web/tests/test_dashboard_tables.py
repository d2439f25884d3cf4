"""The dashboard's incident and SLO tables show the TABLE_ROWS most severe (most at risk)
rows; the counts above them and the headings count all of them."""

from __future__ import annotations

import re

import pytest

from incidents import actions as incident_actions
from web.queries import dashboard
from web.tests.helpers import make_slo

pytestmark = pytest.mark.django_db


def test_the_most_severe_incidents_are_listed_and_all_are_counted(
    viewer_client, make_service, monkeypatch
):
    monkeypatch.setattr(dashboard, "TABLE_ROWS", 3)
    severities = ["low", "critical", "medium", "high", "low", "critical"]
    made = {}
    for n, severity in enumerate(severities):
        made[n] = incident_actions.incident_create_manual(
            actor=None, service=make_service(name=f"S{n}"), title=f"t{n}", severity=severity
        )
    board = dashboard.operator_dashboard()
    # Most severe first, then the oldest of a severity.
    assert [i.pk for i in board.active_incidents] == [made[1].pk, made[5].pk, made[3].pk]
    assert board.active_incidents_total == 6
    assert board.incidents_by_severity == {"critical": 2, "high": 1, "medium": 1, "low": 2}

    html = viewer_client.get("/").content.decode()
    assert "Active incidents (6)" in html
    assert len(re.findall(r'<tr data-incident="\d+">', html)) == 3
    assert "3 more active" in html


def test_the_slos_most_at_risk_are_listed_and_all_are_counted(
    viewer_client, make_service, monkeypatch
):
    monkeypatch.setattr(dashboard, "TABLE_ROWS", 2)
    for n, (risk, left) in enumerate(
        [("medium", 40.0), ("critical", 5.0), ("high", 20.0), ("critical", 1.0), ("none", 90.0)]
    ):
        make_slo(make_service(), f"slo-{n}", violation_risk=risk, budget_remaining_percent=left)
    board = dashboard.operator_dashboard()
    assert [s.id for s in board.slos_at_risk] == ["slo-3", "slo-1"]  # critical, least left
    assert board.slos_at_risk_total == 4  # "none" is not at risk

    html = viewer_client.get("/").content.decode()
    assert "SLOs at risk (4)" in html and "2 more at risk" in html


def test_without_active_incidents_every_severity_counts_zero(viewer_client):
    board = dashboard.operator_dashboard()
    assert board.active_incidents == [] and board.active_incidents_total == 0
    assert board.incidents_by_severity == {"critical": 0, "high": 0, "medium": 0, "low": 0}
