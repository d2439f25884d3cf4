"""Incident statistics against figures computed by hand, and the querysets the API reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from incidents import actions
from incidents.models import Incident
from incidents.queries import incident_active_for, incident_stats

pytestmark = pytest.mark.django_db

START = datetime(2024, 3, 1, tzinfo=UTC)
END = datetime(2024, 3, 4, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def incident_with(service, severity: str, *, status: str, **times: datetime) -> Incident:
    """An incident driven through the actions to `status`, then given exact timestamps."""
    incident = actions.incident_create_manual(
        actor=None, service=service, title=f"{service.id} {severity}", severity=severity
    )
    if "acknowledged_at" in times:
        actions.incident_acknowledge(incident=incident, actor=None)
    if status in ("resolved", "closed"):
        actions.incident_resolve(incident=incident, actor=None)
    if status == "closed":
        actions.incident_close(incident=incident, actor=None)
    if status == "investigating":
        actions.incident_change_status(incident=incident, status=status, actor=None)
    Incident.objects.filter(pk=incident.pk).update(**times)
    return incident


@pytest.fixture
def history(make_service):
    """Hand-made history (minutes: MTTA = ack − detected, MTTR = resolved − impact started):

    id      service sev       detected      impact   ack     resolved       MTTA MTTR  status
    before  a       medium    02-28 23:00   22:50    -       03-01 01:00    -    130   resolved
    i1      a       critical  03-01 10:00   09:50    10:05   10:50          5    60    resolved
    i2      a       high      03-02 12:00   12:00    12:15   14:00          15   120   closed
    i3      b       high      03-02 08:00   07:30    -       08:30 (auto)   -    60    resolved
    i4      b       low       03-03 20:00   19:55    20:40   -              40   -     investigating
    after   c       low       03-10 09:00   09:00    -       -              -    -     new
    """
    a = make_service(id="a", name="Alpha", tags=["prod"])
    b = make_service(id="b", name="Beta", tags=["staging"])
    c = make_service(id="c", name="Gamma")
    incident_with(
        a, "medium", status="resolved", detected_at=datetime(2024, 2, 28, 23, tzinfo=UTC),
        impact_started_at=datetime(2024, 2, 28, 22, 50, tzinfo=UTC), resolved_at=at(1, 1),
    )  # fmt: skip
    incident_with(
        a, "critical", status="resolved", detected_at=at(1, 10), impact_started_at=at(1, 9, 50),
        acknowledged_at=at(1, 10, 5), resolved_at=at(1, 10, 50),
    )  # fmt: skip
    incident_with(
        a, "high", status="closed", detected_at=at(2, 12), impact_started_at=at(2, 12),
        acknowledged_at=at(2, 12, 15), resolved_at=at(2, 14), closed_at=at(2, 15),
    )  # fmt: skip
    incident_with(
        b, "high", status="resolved", detected_at=at(2, 8), impact_started_at=at(2, 7, 30),
        resolved_at=at(2, 8, 30),
    )  # fmt: skip
    incident_with(
        b, "low", status="investigating", detected_at=at(3, 20),
        impact_started_at=at(3, 19, 55), acknowledged_at=at(3, 20, 40),
    )  # fmt: skip
    incident_with(c, "low", status="new", detected_at=at(10, 9), impact_started_at=at(10, 9))


def test_stats_match_the_hand_computed_figures(history):
    stats = incident_stats(start=START, end=END)
    assert stats["total"] == 4  # i1..i4: detected in the range
    assert stats["active"] == 2  # i4 and the one after the range: active now
    assert stats["resolved"] == 3  # i1, i2 (closed), i3
    assert stats["unacknowledged"] == 1  # i3, auto-resolved: not in MTTA
    assert stats["mtta_minutes"] == {"mean": 20.0, "median": 15.0}  # 5, 15, 40
    assert stats["mttr_minutes"] == {"mean": 80.0, "median": 60.0}  # 60, 120, 60
    assert stats["by_severity"] == {"critical": 1, "high": 2, "medium": 0, "low": 1}
    assert stats["by_status"] == {
        "new": 0, "investigating": 1, "in_progress": 0, "resolved": 2, "closed": 1,
    }  # fmt: skip
    assert stats["by_service"] == [
        {"service": "a", "name": "Alpha", "count": 2},
        {"service": "b", "name": "Beta", "count": 2},
    ]
    assert stats["daily"] == [
        # 03-01 resolved: i1 and the one detected before the range
        {"date": "2024-03-01", "opened": 1, "resolved": 2},
        {"date": "2024-03-02", "opened": 2, "resolved": 2},
        {"date": "2024-03-03", "opened": 1, "resolved": 0},
    ]
    assert (stats["from"], stats["to"]) == (START, END)


def test_stats_by_tag(history):
    stats = incident_stats(start=START, end=END, tag="prod")
    assert (stats["total"], stats["active"], stats["resolved"]) == (2, 0, 2)
    assert stats["mtta_minutes"] == {"mean": 10.0, "median": 10.0}  # 5, 15
    assert stats["mttr_minutes"] == {"mean": 90.0, "median": 90.0}  # 60, 120
    assert [(d["opened"], d["resolved"]) for d in stats["daily"]] == [(1, 2), (1, 1), (0, 0)]


def test_stats_by_service_and_severity(history):
    stats = incident_stats(start=START, end=END, service="b")
    assert (stats["total"], stats["active"], stats["unacknowledged"]) == (2, 1, 1)
    assert stats["mtta_minutes"] == {"mean": 40.0, "median": 40.0}
    assert stats["mttr_minutes"] == {"mean": 60.0, "median": 60.0}

    stats = incident_stats(start=START, end=END, severity="high")
    assert (stats["total"], stats["resolved"], stats["unacknowledged"]) == (2, 2, 1)
    assert stats["mtta_minutes"] == {"mean": 15.0, "median": 15.0}
    assert stats["mttr_minutes"] == {"mean": 90.0, "median": 90.0}
    assert stats["by_service"] == [
        {"service": "a", "name": "Alpha", "count": 1},
        {"service": "b", "name": "Beta", "count": 1},
    ]


def test_an_empty_range_has_zero_days_and_no_durations(history):
    stats = incident_stats(start=at(5, 0), end=at(7, 0))
    assert stats["total"] == stats["resolved"] == stats["unacknowledged"] == 0
    assert stats["mtta_minutes"] == stats["mttr_minutes"] == {"mean": None, "median": None}
    assert stats["by_service"] == []
    assert set(stats["by_severity"].values()) == {0}
    assert stats["daily"] == [
        {"date": "2024-03-05", "opened": 0, "resolved": 0},
        {"date": "2024-03-06", "opened": 0, "resolved": 0},
    ]


def test_a_range_off_midnight_lists_each_day_it_touches(history):
    stats = incident_stats(start=at(1, 12), end=at(2, 9))
    assert [d["date"] for d in stats["daily"]] == ["2024-03-01", "2024-03-02"]
    # i1 (03-01 10:00) is before the start; i3 (03-02 08:00) is inside, resolved 08:30.
    assert stats["total"] == 1
    assert [(d["opened"], d["resolved"]) for d in stats["daily"]] == [(0, 0), (1, 1)]


def test_stats_take_one_query(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        incident_stats(start=START, end=END, tag="prod", severity="high", service="a")


def test_the_active_incident_of_a_service(history):
    assert incident_active_for("b").severity == "low"
    assert incident_active_for("a") is None
