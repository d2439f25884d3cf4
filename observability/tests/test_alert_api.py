"""/api/alert-rules/ and /api/alerts/: validation, order, filters, acknowledge and silence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import AuditEvent
from observability import actions
from observability.models import Alert, AlertRule
from observability.tests.test_alerts import push, rule

pytestmark = pytest.mark.django_db
RULES = "/api/alert-rules/"


def valid(**fields) -> dict:
    return {"name": "cpu", "metric": "cpu_percent", "aggregation": "avg", "condition": "gt",
            "threshold": 90, "window_seconds": 300, "for_seconds": 60, **fields}  # fmt: skip


def test_an_admin_creates_a_rule_with_channels_and_it_is_audited(client_as, application):
    response = client_as("admin").post(
        RULES, valid(application="shop", match_labels={"host": "a"}), format="json"
    )
    assert response.status_code == 201, response.content
    created = AlertRule.objects.get()
    assert created.application == application and created.match_labels == {"host": "a"}
    assert AuditEvent.objects.filter(target_type__icontains="alertrule").exists()
    assert client_as("viewer").get(RULES).json()["results"][0]["name"] == "cpu"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"metric": ""}, "metric"),
        ({"metric": "not a metric"}, "metric"),
        ({"aggregation": "median"}, "aggregation"),
        ({"condition": "=="}, "condition"),
        ({"for_seconds": 86_401}, "for_seconds"),
        ({"window_seconds": 10}, "window_seconds"),
        ({"threshold": None}, "threshold"),
        ({"opens_incident": True}, "service"),
        ({"match_labels": {"host": 1}}, "match_labels"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"application": "nope"}, "application"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field(client_as, fields, field):
    response = client_as("admin").post(RULES, valid(**fields), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not AlertRule.objects.exists()


def test_an_update_keeps_the_rules_checks(client_as):
    created = rule()
    response = client_as("admin").patch(f"{RULES}{created.pk}/", {"for_seconds": 90_000},
                                        format="json")  # fmt: skip
    assert response.status_code == 400 and "for_seconds" in response.json()["errors"]
    assert AlertRule.objects.get().for_seconds == 0


def test_alerts_list_active_by_severity_and_filter(client_as, application):
    push(application, "m_low", [5])
    push(application, "m_high", [5])
    rule(name="low", metric="m_low", threshold=1, severity="low")
    high = rule(name="high", metric="m_high", threshold=1, severity="high")
    actions.alerts_evaluate()
    viewer = client_as("viewer")
    listed = viewer.get("/api/alerts/").json()["results"]
    assert [a["rule_name"] for a in listed] == ["high", "low"]
    assert listed[0]["status"] == "active" and listed[0]["value"] == 5
    assert len(viewer.get("/api/alerts/?severity=low").json()["results"]) == 1
    assert len(viewer.get(f"/api/alerts/?rule={high.pk}&status=active").json()["results"]) == 1
    assert viewer.get("/api/alerts/?status=resolved").json()["results"] == []
    assert viewer.get("/api/alerts/?status=bogus").status_code == 400


def test_operators_acknowledge_and_silence(client_as, application):
    push(application, "cpu_percent", [99])
    rule()
    actions.alerts_evaluate()
    alert = Alert.objects.get()
    operator = client_as("operator")
    acknowledged = operator.post(f"/api/alerts/{alert.pk}/acknowledge/")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"]
    silenced = operator.post(f"/api/alerts/{alert.pk}/silence/", {"minutes": 30}, format="json")
    assert silenced.status_code == 200
    until = datetime.fromisoformat(silenced.json()["silenced_until"])
    assert 29 * 60 < (until - datetime.now(UTC)).total_seconds() <= 30 * 60
    too_long = operator.post(f"/api/alerts/{alert.pk}/silence/", {"minutes": 99_999},
                             format="json")  # fmt: skip
    assert too_long.status_code == 400 and "minutes" in too_long.json()["errors"]
    assert client_as("viewer").post(f"/api/alerts/{alert.pk}/acknowledge/").status_code == 403
