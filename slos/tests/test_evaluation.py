"""Evaluating SLOs over rollup data: SLIs, budgets, history, cache, alerts and their incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from incidents import delivery
from incidents.models import Incident, NotificationChannel, NotificationDelivery
from noc.models import RollupWatermark
from services.models import CheckResult
from services.tests.fixtures import ensure_partitions, refresh_rollups
from services.timeseries import CHECK_RESULTS
from slos import actions, budget
from slos.models import SLO, SLOAlert, SLOStatus

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def fill(service, start: datetime, minutes: int, *, down=lambda i: False, rt=lambda i: 80.0):
    """One check per minute as raw results, then the rollups as the refresh would leave them
    (native: refreshed up to NOW; TimescaleDB: real-time continuous aggregates)."""
    ensure_partitions(CHECK_RESULTS, start, start + timedelta(minutes=minutes + 1))
    CheckResult.objects.bulk_create(
        [
            CheckResult(
                service_id=service.id, time=start + timedelta(minutes=i),
                status="down" if down(i) else "up", response_time_ms=None if down(i) else rt(i),
            )
            for i in range(minutes)
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    for name, upto in [
        ("services_checkrollup", start),
        ("services_checkrollup_hourly", start - timedelta(hours=1)),
    ]:
        RollupWatermark.objects.update_or_create(name=name, defaults={"upto": upto})
    refresh_rollups(now=NOW)


def fill_every(service, start: datetime, checks: int, *, step: timedelta, down=lambda i: False):
    """`checks` results `step` apart (a service checked less often than once a minute)."""
    ensure_partitions(CHECK_RESULTS, start, start + step * checks + timedelta(minutes=1))
    CheckResult.objects.bulk_create(
        [
            CheckResult(
                service_id=service.id,
                time=start + step * i,
                status="down" if down(i) else "up",
                response_time_ms=None if down(i) else 80.0,
            )
            for i in range(checks)
        ]
    )
    for name, upto in [
        ("services_checkrollup", start),
        ("services_checkrollup_hourly", start - timedelta(hours=1)),
    ]:
        RollupWatermark.objects.update_or_create(name=name, defaults={"upto": upto})
    refresh_rollups(now=NOW)


def make_slo(service, **fields):
    fields.setdefault("id", f"slo-{service.id}")
    fields.setdefault("name", f"{service.name} availability")
    fields.setdefault("sli_type", "availability")
    fields.setdefault("target", "99.9")
    fields.setdefault("window", "24h")
    return actions.slo_create(actor=None, service=service, **fields)


def test_an_availability_slo_reports_its_sli_budget_and_history(make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    # 24 hours of checks, 1 failed minute: 1439/1440 good.
    fill(service, NOW - timedelta(hours=24), 24 * 60, down=lambda i: i == 100)
    assert actions.slos_evaluate(now=NOW) == 1
    slo.refresh_from_db()
    assert slo.current_value == pytest.approx(100 * 1439 / 1440, abs=0.01)
    assert slo.compliant is True  # 99.93 % ≥ 99.9 %
    assert slo.budget_total_minutes == pytest.approx(1.44)  # (1 − 0.999) × 1440 minutes
    assert slo.budget_used_minutes == pytest.approx(1.0)
    assert slo.budget_remaining_percent == 30.5556  # 100 × 0.44 / 1.44, to 4 places
    assert slo.violation_risk == "medium"  # under 50 % of the budget left
    assert slo.burn_rate == 0  # the failed minute was hours ago
    history = SLOStatus.objects.get(slo=slo)
    assert history.time == NOW
    assert (history.good, history.total) == (1439, 1440)


def test_a_service_checked_every_5_minutes_spends_its_budget_by_the_error_ratio(make_service):
    service = make_service(interval_seconds=300)
    slo = make_slo(service, window="24h", target="99.5")
    start = NOW - timedelta(hours=24)
    # 288 checks, one every 5 minutes; 3 failed, none in the last hour: 98.96 % < 99.5 %.
    fill_every(service, start, 288, step=timedelta(minutes=5), down=lambda i: i in (0, 100, 200))
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.compliant is False
    assert slo.current_value == pytest.approx(100 * 285 / 288)
    assert slo.budget_total_minutes == pytest.approx(7.2)
    # 3/288 of the 1,440-minute window, not of the 288 minutes that had a check (3.0).
    assert slo.budget_used_minutes == pytest.approx(15.0)
    assert slo.budget_remaining_percent < 0
    assert slo.violation_risk == "critical"  # the budget is spent, though nothing burns now
    assert SLOStatus.objects.get(slo=slo).budget_used_minutes == pytest.approx(15.0)


def test_a_calendar_window_is_charged_for_the_time_elapsed_since_it_began(make_service):
    service = make_service()
    slo = make_slo(service, window="month", target="99")
    start, end = slo.window_bounds(NOW)
    elapsed = (NOW - start) / timedelta(minutes=1)
    if elapsed < 120:
        pytest.skip("too close to the start of the month")
    # The last hour: one check every other minute, 3 of 30 failed (10 %).
    fill_every(service, NOW - timedelta(hours=1), 30, step=timedelta(minutes=2),
               down=lambda i: i < 3)  # fmt: skip
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.budget_total_minutes == pytest.approx(0.01 * (end - start) / timedelta(minutes=1))
    assert slo.budget_used_minutes == pytest.approx(0.1 * elapsed)


def test_the_30_day_budget_of_the_seed(make_service):
    slo = make_slo(make_service(), window="30d")
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.budget_total_minutes == pytest.approx(43.2)
    assert slo.current_value is None  # no data is reported, not guessed
    assert slo.minutes_without_data == pytest.approx(30 * 24 * 60)


def test_evaluating_twice_in_a_minute_writes_one_history_row(make_service):
    slo = make_slo(make_service())
    actions.slos_evaluate(now=NOW)
    actions.slos_evaluate(now=NOW + timedelta(seconds=30))
    assert SLOStatus.objects.filter(slo=slo).count() == 1


def test_a_minute_evaluated_again_writes_the_rows_it_lacks_and_keeps_the_others(make_service):
    # The history is written by COPY; a minute that already has rows takes the INSERT that
    # skips them (here: one SLO was created between the two evaluations).
    first = make_slo(make_service())
    actions.slos_evaluate(now=NOW)
    written = SLOStatus.objects.get(slo=first)
    second = make_slo(make_service())
    SLO.objects.filter(pk=first.pk).update(target="99")  # would change the row if rewritten
    actions.slos_evaluate(now=NOW)
    assert SLOStatus.objects.filter(time=NOW).count() == 2
    assert SLOStatus.objects.get(slo=first).target == written.target == 99.9
    assert SLOStatus.objects.get(slo=second).time == NOW


def test_a_latency_slo_counts_checks_under_the_threshold(make_service):
    service = make_service()
    slo = make_slo(service, id="lat", sli_type="latency", latency_threshold_ms=250, target="90")
    fill(service, NOW - timedelta(hours=1), 60, rt=lambda i: 400.0 if i % 4 == 0 else 120.0)
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.current_value == pytest.approx(75.0)
    assert slo.compliant is False


def test_a_fast_burn_pages_opens_an_incident_and_clears_with_hysteresis(make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    # The last 10 of 60 minutes failed: 1 h burn = (10/60)/0.001 ≈ 167, 5 min burn = 1000.
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: i >= 50)
    actions.slos_evaluate(now=NOW)
    alert = SLOAlert.objects.get(slo=slo, rule="page-1h-5m", state="firing")
    incident = Incident.objects.get(service=service)
    assert alert.incident == incident
    assert incident.source == "slo"
    assert incident.dedup_key == f"slo:{slo.id}"
    # A later evaluation that still burns keeps one firing alert.
    actions.slos_evaluate(now=NOW + timedelta(minutes=1))
    assert SLOAlert.objects.filter(slo=slo, rule="page-1h-5m", state="firing").count() == 1

    slo.refresh_from_db()
    calm = actions.Evaluation(
        slo=slo, good=1, total=1, value=100, compliant=True, budget=budget.Budget(1.44, 0),
        burn=0.0, risk="none", exhausted_at=None, minutes_without_data=0,
        burns={lb: 0.0 for lb in budget.LOOKBACKS},
    )  # fmt: skip
    actions.alerts_update(evaluation=calm, now=NOW + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert incident.events.filter(message__contains="cleared").exists()


def test_a_burn_of_exactly_the_lowest_threshold_fires_and_a_calm_slo_clears(make_service):
    # A 1 h window at 60 %: page-1h-5m's threshold is the lowest any rule has (1). Evaluation
    # looks at the alerts only of SLOs with one firing or a burn rate at or over it.
    service = make_service()
    slo = make_slo(service, window="1h", target="60")
    # The hour before NOW − 3 h: 24 of 60 checks down, 2 of the last 5 (burn rates of 1 over
    # 1 h and 5 min, and none over 1 anywhere: no data before that hour).
    fill(service, NOW - timedelta(hours=4), 240, down=lambda i: i < 22 or i in (57, 58))
    earlier = NOW - timedelta(hours=3)
    slo.refresh_from_db()
    burns = actions.evaluate(slo, actions.slos_read([slo], earlier)[slo.id], earlier).burns
    assert max(burn for burn in burns.values() if burn is not None) == 1.0
    actions.slos_evaluate(now=earlier)
    alert = SLOAlert.objects.get(slo=slo, state="firing")
    assert (alert.rule, alert.long_burn, alert.short_burn) == ("page-1h-5m", 1.0, 1.0)
    # Three hours later every burn rate is under 1: the alert still clears.
    burns = actions.evaluate(slo, actions.slos_read([slo], NOW)[slo.id], NOW).burns
    assert all(burn < 1 for burn in burns.values() if burn is not None)
    actions.slos_evaluate(now=NOW)
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_only_one_hot_window_does_not_page(make_service):
    service = make_service()
    slo = make_slo(service, window="30d")
    # Failures an hour ago, none in the last 5 minutes: the long window is hot, the short not.
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: 10 <= i < 20)
    actions.slos_evaluate(now=NOW)
    assert not SLOAlert.objects.filter(slo=slo, rule="page-1h-5m").exists()


def test_a_ticket_alert_records_an_alert_without_an_incident_and_notifies(
    make_service, receiver, settings
):
    settings.NOTIFICATION_ALLOW_PRIVATE = True
    service = make_service()
    channel = delivery.channel_save(
        actor=None,
        channel=NotificationChannel(name="team", kind="webhook", url=receiver.url, is_default=True),
    )
    delivery.channel_save(  # a pager does not hear of tickets
        actor=None,
        channel=NotificationChannel(
            name="pager", kind="webhook", url=receiver.url, is_default=True, min_severity="high"
        ),
    )
    slo = make_slo(service, window="30d")
    thirty = timedelta(days=30)
    rule = next(r for r in budget.RULES if r.name == "ticket-1d-2h")
    hot = rule.threshold(thirty) * 1.5
    evaluation = actions.Evaluation(
        slo=slo, good=1, total=1, value=100, compliant=True, budget=budget.Budget(43.2, 0),
        burn=0.5, risk="none", exhausted_at=None, minutes_without_data=0,
        burns={lb: (hot if lb in (rule.long, rule.short) else 0.0) for lb in budget.LOOKBACKS},
    )  # fmt: skip
    actions.alerts_update(evaluation=evaluation, now=NOW)
    alert = SLOAlert.objects.get(slo=slo)
    assert (alert.rule, alert.severity, alert.incident) == ("ticket-1d-2h", "ticket", None)
    assert not Incident.objects.exists()

    [row] = NotificationDelivery.objects.all()
    assert (row.channel, row.kind, row.incident) == (channel, "slo_ticket", None)
    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"
    [request] = receiver.requests
    body = request.json()
    assert body["title"] == f"SLO ticket: {slo.name}"
    assert body["message"].startswith(f"SLO {slo.name}: burn rate {hot:.1f} over 1d")
    assert body["slo"]["id"] == slo.id and body["service"]["id"] == service.id
    assert body["alert"] == {
        "id": alert.pk, "rule": "ticket-1d-2h", "threshold": rule.threshold(thirty),
        "long_burn": hot, "short_burn": hot,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"target": "0"}, "target"),
        ({"target": "100"}, "target"),
        ({"target": "120"}, "target"),
        ({"window": "2w"}, "window"),
        ({"sli_type": "happiness"}, "sli_type"),
        ({"sli_type": "latency"}, "latency_threshold_ms"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "Europe"}, "time_zone"),  # a directory: IsADirectoryError, not a 500
        ({"id": "summary"}, "id"),  # reserved for every writer, not only the API
    ],
)
def test_bad_slo_configuration_names_the_field_and_saves_nothing(make_service, fields, field):
    service = make_service()
    with pytest.raises(ValidationError) as refused:
        make_slo(service, **fields)
    assert field in refused.value.message_dict
    assert not SLO.objects.exists()


def test_a_latency_slo_on_a_push_service_is_refused(make_service):
    push = make_service(kind="push", url="", interval_seconds=300)
    with pytest.raises(ValidationError, match="push service"):
        make_slo(push, sli_type="latency", latency_threshold_ms=100)


@pytest.mark.django_db(transaction=True)
def test_two_workers_evaluating_at_once_write_each_minute_once(target):
    import threading

    from services.actions import service_create

    service = service_create(actor=None, id="eval-race", name="race", url=f"{target}/ok")
    slo = make_slo(service)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(actions.slos_evaluate(now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 in results and set(results) <= {1, -1}
    assert SLOStatus.objects.filter(slo=slo).count() == 1


def test_slos_with_and_without_data_are_evaluated_together(make_service):
    # Integer sums for one SLO and interpolated float sums for another end up in one array.
    with_data = make_service()
    make_slo(with_data, id="lat-data", sli_type="latency", latency_threshold_ms=300, target="90")
    fill(with_data, NOW - timedelta(minutes=30), 30, rt=lambda i: 120.0 + i)
    make_slo(make_service(), id="no-data")
    assert actions.slos_evaluate(now=NOW) == 2
    assert SLOStatus.objects.count() == 2


def test_alerts_of_a_disabled_slo_clear_and_say_so_on_the_incident(make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: i >= 50)
    actions.slos_evaluate(now=NOW)
    page = SLOAlert.objects.get(slo=slo, rule="page-1h-5m")
    assert SLOAlert.objects.filter(slo=slo, state="firing").count() == 3
    actions.slo_update(actor=None, slo=slo, enabled=False)
    actions.slos_evaluate(now=NOW + timedelta(minutes=1))  # still burning, but not evaluated
    assert not SLOAlert.objects.filter(slo=slo, state="firing").exists()
    page.refresh_from_db()
    assert page.resolved_at == NOW + timedelta(minutes=1)
    assert page.incident.events.filter(
        message="SLO burn-rate alert page-1h-5m cleared: the SLO is disabled"
    ).exists()


def test_alerts_of_rules_the_new_window_skips_clear(make_service):
    service = make_service()
    slo = make_slo(service, window="24h")
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: i >= 50)
    actions.slos_evaluate(now=NOW)
    rules = {"page-1h-5m", "page-6h-30m", "ticket-1d-2h"}
    assert set(SLOAlert.objects.filter(slo=slo, state="firing").values_list("rule", flat=True)) == (
        rules
    )
    # A 1-hour window has only the 1 h / 5 min rule: the others are never evaluated again.
    actions.slo_update(actor=None, slo=slo, window="1h")
    actions.slos_evaluate(now=NOW + timedelta(minutes=1))
    states = dict(SLOAlert.objects.filter(slo=slo).values_list("rule", "state"))
    assert states == {"page-1h-5m": "firing", "page-6h-30m": "resolved", "ticket-1d-2h": "resolved"}
    six_hours = SLOAlert.objects.get(slo=slo, rule="page-6h-30m")
    assert six_hours.incident.events.filter(
        message="SLO burn-rate alert page-6h-30m cleared: the rule no longer applies to the window"
    ).exists()
