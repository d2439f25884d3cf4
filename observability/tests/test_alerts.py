"""Alert rules fire after their `for`, stay one alert under concurrent evaluation, resolve,
notify through the channels (webhooks to a real local server), open and resolve incidents."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from incidents import delivery
from incidents.choices import IncidentSource, IncidentStatus
from incidents.models import Incident, NotificationChannel, NotificationDelivery
from observability import actions, queries
from observability.models import Alert, AlertRule
from observability.tests.fixtures import point

pytestmark = pytest.mark.django_db


def push(application, name: str, values: list[float], *, seconds_apart: int = 10, **labels):
    now = datetime.now(UTC)
    points = [
        point(name, value, now - timedelta(seconds=seconds_apart * (len(values) - i)), **labels)
        for i, value in enumerate(values)
    ]
    actions.metric_points_ingest(application=application, points=points)


def rule(**fields) -> AlertRule:
    fields.setdefault("name", "cpu hot")
    fields.setdefault("metric", "cpu_percent")
    fields.setdefault("aggregation", "avg")
    fields.setdefault("condition", "gt")
    fields.setdefault("threshold", 90)
    fields.setdefault("window_seconds", 300)
    return actions.alert_rule_create(actor=None, **fields)


@pytest.fixture
def webhook(receiver):
    return delivery.channel_save(
        actor=None,
        channel=NotificationChannel(name="team", kind="webhook", url=receiver.url, is_default=True),
    )


def notices(kind: str) -> list[NotificationDelivery]:
    return [d for d in NotificationDelivery.objects.order_by("id") if d.kind == kind]


def test_a_rule_fires_after_its_for_and_resolves_notifying_both(application, webhook, receiver):
    push(application, "cpu_percent", [95, 97, 99], host="a")
    push(application, "cpu_percent", [10, 12, 11], host="b")
    cpu = rule(for_seconds=60, severity="high", labels={"team": "web"})
    now = datetime.now(UTC)
    assert actions.alerts_evaluate(now=now) == 1
    alert = Alert.objects.get()
    assert alert.status == "pending" and alert.labels == {
        "application": "shop", "host": "a", "team": "web",
    }  # fmt: skip
    assert not notices("alert_firing")  # pending: nobody hears of it yet

    actions.alerts_evaluate(now=now + timedelta(seconds=61))
    alert.refresh_from_db()
    assert (alert.status, alert.value, alert.severity) == ("active", 97, "high")
    [firing] = notices("alert_firing")
    assert delivery.delivery_attempt(delivery_id=firing.pk) == "sent"
    body = receiver.requests[0].json()
    assert body["event"] == "alert_firing" and body["title"] == "Alert firing: cpu hot"
    assert body["alert"]["labels"]["host"] == "a" and body["rule"]["id"] == cpu.pk
    assert "avg(cpu_percent) over 300 s is 97 > 90" in body["message"]

    push(application, "cpu_percent", [1] * 30, seconds_apart=1, host="a")
    actions.alerts_evaluate(now=datetime.now(UTC) + timedelta(seconds=62))
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.ended_at is not None
    [resolved] = notices("alert_resolved")
    assert delivery.delivery_attempt(delivery_id=resolved.pk) == "sent"
    assert receiver.requests[1].json()["event"] == "alert_resolved"


def test_a_pending_alert_that_clears_goes_without_a_word(application, webhook):
    push(application, "cpu_percent", [95], host="a")
    rule(for_seconds=600)
    now = datetime.now(UTC)
    actions.alerts_evaluate(now=now)
    assert Alert.objects.get().status == "pending"
    push(application, "cpu_percent", [1] * 40, seconds_apart=1, host="a")
    actions.alerts_evaluate(now=datetime.now(UTC))
    assert not Alert.objects.exists() and not NotificationDelivery.objects.exists()


def test_an_absent_rule_fires_without_data_and_resolves_when_data_comes(application, webhook):
    rule(name="heartbeat gone", metric="heartbeat", condition="absent", threshold=None,
         aggregation="count", window_seconds=120)  # fmt: skip
    actions.alerts_evaluate()
    alert = Alert.objects.get()
    assert (alert.status, alert.labels, alert.value) == ("active", {}, None)
    push(application, "heartbeat", [1])
    actions.alerts_evaluate()
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.last_value == 1
    assert len(notices("alert_firing")) == len(notices("alert_resolved")) == 1


def test_evaluating_twice_at_the_same_moment_changes_nothing(application, webhook):
    push(application, "cpu_percent", [99], host="a")
    rule()
    now = datetime.now(UTC)
    actions.alerts_evaluate(now=now)
    actions.alerts_evaluate(now=now)
    assert Alert.objects.count() == 1 and len(notices("alert_firing")) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluating_at_once_make_one_alert_and_one_notification(make_application,
                                                                             webhook):  # fmt: skip
    application, _ = make_application("shop")
    push(application, "cpu_percent", [99], host="a")
    rule()
    barrier, results, errors = threading.Barrier(2), [], []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(actions.alerts_evaluate())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(results) in ([-1, 1], [1, 1])  # the second waits its turn or finds it done
    assert Alert.objects.filter(status="active").count() == 1
    assert len(notices("alert_firing")) == 1


def test_a_firing_rule_opens_an_incident_and_resolves_it(application, make_service):
    service = make_service()
    push(application, "errors_total", [50], route="/pay")
    rule(name="errors", metric="errors_total", aggregation="max", threshold=10,
         service=service, opens_incident=True, severity="critical")  # fmt: skip
    actions.alerts_evaluate()
    alert = Alert.objects.get()
    incident = Incident.objects.get()
    assert alert.incident == incident
    assert (incident.source, incident.severity, incident.service) == (
        IncidentSource.ALERT_RULE, "critical", service,
    )  # fmt: skip
    assert incident.title == "Alert: errors"
    push(application, "errors_total", [0] * 40, seconds_apart=1, route="/pay")
    actions.alert_rule_update(actor=None, rule=AlertRule.objects.get(), aggregation="last")
    actions.alerts_evaluate()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_a_disabled_rule_resolves_its_alerts(application, webhook):
    push(application, "cpu_percent", [99], host="a")
    cpu = rule()
    actions.alerts_evaluate()
    actions.alert_rule_update(actor=None, rule=cpu, enabled=False)
    actions.alerts_evaluate()
    assert Alert.objects.get().status == "resolved"
    assert len(notices("alert_resolved")) == 1


def test_a_silenced_alert_notifies_nobody(application, webhook, make_user):
    push(application, "cpu_percent", [95], host="a")
    rule(for_seconds=60)
    now = datetime.now(UTC)
    actions.alerts_evaluate(now=now)
    actions.alert_silence(alert=Alert.objects.get(), actor=make_user("operator"), minutes=30)
    actions.alerts_evaluate(now=now + timedelta(seconds=61))
    assert Alert.objects.get().status == "active" and not notices("alert_firing")


def test_a_flapping_alert_notifies_once_per_interval_and_ends_on_its_state(application, webhook):
    cpu = rule(aggregation="last")
    for value in (99, 1, 99, 1):
        push(application, "cpu_percent", [value] * 40, seconds_apart=1, host="a")
        actions.alerts_evaluate()
    statuses = [(d.kind, d.status) for d in NotificationDelivery.objects.order_by("id")]
    assert statuses == [
        ("alert_firing", "pending"), ("alert_resolved", "pending"),
        ("alert_firing", "suppressed"), ("alert_resolved", "suppressed"),
    ]  # fmt: skip
    later = datetime.now(UTC) + timedelta(hours=1)
    due = delivery.deliveries_claim_due(now=later)
    held = list(NotificationDelivery.objects.order_by("id"))[2:]
    # The latest state is sent; the firing it superseded is not (the first two, never sent
    # here for want of a worker, are due again too).
    assert held[1].pk in due and held[0].pk not in due
    assert cpu.alerts.count() == 2


def test_active_alerts_come_by_severity_then_newest(application):
    for name, severity in [("low one", "low"), ("critical one", "critical"), ("high", "high")]:
        push(application, f"m_{severity}", [5])
        rule(name=name, metric=f"m_{severity}", threshold=1, severity=severity)
    actions.alerts_evaluate()
    assert [a.rule.name for a in queries.active_alerts()] == ["critical one", "high", "low one"]
    assert [a.rule.name for a in queries.active_alerts(limit=1)] == ["critical one"]
