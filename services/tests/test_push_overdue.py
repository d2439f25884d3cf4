"""Missing pings of push services: deadlines (interval and cron), a silence that stays down and
counts, detector outages and re-enabled services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from services import actions
from services.actions import MAX_SLOT_AGE
from services.models import CheckResult, Service

pytestmark = pytest.mark.django_db


def downs(service: Service) -> list[datetime]:
    return list(
        CheckResult.objects.filter(service_id=service.id, status="down")
        .order_by("time")
        .values_list("time", flat=True)
    )


def ping(service: Service, at: datetime) -> None:
    actions.push_ping_record(token=service.ping_token, outcome="success", now=at)


def test_a_silent_job_stays_down_one_failure_per_period_and_opens_an_incident(make_service):
    push = make_service(kind="push", url="", interval_seconds=60, grace_seconds=60)
    assert push.failure_threshold == 2  # the default
    pinged = timezone.now() - timedelta(minutes=4, seconds=30)
    ping(push, pinged)
    # The detector runs every second: each run records what became due since the last.
    for second in range(0, 271, 1):
        actions.push_overdue_record(now=pinged + timedelta(seconds=second))
    first = pinged + timedelta(seconds=120)
    assert downs(push) == [first, first + timedelta(seconds=60), first + timedelta(seconds=120)]
    push.refresh_from_db()
    assert (push.status, push.consecutive_failures) == ("down", 3)
    assert Incident.objects.filter(service_id=push.id).count() == 1


def test_missed_periods_since_the_last_run_are_recorded_at_their_deadlines(make_service):
    push = make_service(kind="push", url="", interval_seconds=60, grace_seconds=30)
    pinged = timezone.now() - timedelta(minutes=5)
    ping(push, pinged)
    assert actions.push_overdue_record(now=pinged + timedelta(seconds=89)) == 0
    assert actions.push_overdue_record(now=pinged + timedelta(seconds=215)) == 3
    assert actions.push_overdue_record(now=pinged + timedelta(seconds=215)) == 0
    assert downs(push) == [pinged + timedelta(seconds=s) for s in (90, 150, 210)]
    # A ping ends the silence: the next deadline counts from it.
    ping(push, pinged + timedelta(seconds=220))
    assert actions.push_overdue_record(now=pinged + timedelta(seconds=300)) == 0
    push.refresh_from_db()
    assert (push.status, push.consecutive_failures) == ("up", 0)


def test_a_cron_job_is_due_at_its_next_firing_not_after_a_fixed_period(make_service):
    # 09:00 and 17:00: the gaps are 8 h and 16 h, no fixed period fits both.
    push = make_service(
        kind="push", url="", interval_seconds=None, cron="0 0 9,17 * * *", grace_seconds=600
    )
    evening = datetime(2026, 12, 1, 17, 0, 5, tzinfo=UTC)
    ping(push, evening)
    push.refresh_from_db()
    assert push.ping_deadline() == datetime(2026, 12, 2, 9, 10, tzinfo=UTC)
    assert actions.push_overdue_record(now=datetime(2026, 12, 2, 2, 0, tzinfo=UTC)) == 0
    assert actions.push_overdue_record(now=datetime(2026, 12, 2, 9, 9, 59, tzinfo=UTC)) == 0
    assert actions.push_overdue_record(now=datetime(2026, 12, 2, 9, 10, tzinfo=UTC)) == 1
    # Still silent: down again at each further firing + grace.
    assert actions.push_overdue_record(now=datetime(2026, 12, 2, 17, 9, tzinfo=UTC)) == 0
    assert actions.push_overdue_record(now=datetime(2026, 12, 2, 17, 10, tzinfo=UTC)) == 1
    assert downs(push) == [
        datetime(2026, 12, 2, 9, 10, tzinfo=UTC),
        datetime(2026, 12, 2, 17, 10, tzinfo=UTC),
    ]


def test_after_a_detector_outage_a_silence_is_recorded_now_not_weeks_back(make_service):
    push = make_service(kind="push", url="", interval_seconds=3600, grace_seconds=60)
    ping(push, timezone.now() - timedelta(days=60))
    now = timezone.now()
    assert actions.push_overdue_record(now=now) == 1
    assert downs(push) == [now]
    assert actions.push_overdue_record(now=now + timedelta(seconds=1)) == 0
    # The series goes on from there, one failure per period.
    push.refresh_from_db()
    assert push.consecutive_failures == 1
    assert actions.push_overdue_record(now=now + timedelta(hours=1)) == 1
    assert now - MAX_SLOT_AGE <= min(downs(push))


def test_a_re_enabled_push_service_gets_a_new_period_from_now(make_service):
    push = make_service(kind="push", url="", interval_seconds=3600, grace_seconds=60)
    ping(push, timezone.now() - timedelta(days=60))
    push.refresh_from_db()
    actions.service_set_enabled(actor=None, service=push, enabled=False)
    push.refresh_from_db()
    enabled_at = timezone.now()
    actions.service_set_enabled(actor=None, service=push, enabled=True)
    assert actions.push_overdue_record() == 0
    assert downs(push) == []
    push.refresh_from_db()
    assert push.last_ping_at >= enabled_at
    later = push.last_ping_at + timedelta(hours=1, seconds=60)
    assert actions.push_overdue_record(now=later) == 1
    assert downs(push) == [later]


def test_enable_on_an_enabled_push_service_keeps_its_clock(make_service):
    push = make_service(kind="push", url="", interval_seconds=60, grace_seconds=30)
    pinged = timezone.now() - timedelta(minutes=3)
    ping(push, pinged)
    push.refresh_from_db()
    actions.service_set_enabled(actor=None, service=push, enabled=True)
    push.refresh_from_db()
    assert push.last_ping_at == pinged
    assert actions.push_overdue_record() == 2


def test_a_cron_whose_years_ran_out_does_not_stop_the_detector(make_service):
    silent = make_service(kind="push", url="", interval_seconds=60, grace_seconds=30)
    expired = make_service(kind="push", url="", interval_seconds=None, cron="0 0 9 * * * 2026")
    pinged = datetime(2026, 12, 31, 9, 0, tzinfo=UTC)
    ping(silent, pinged)
    ping(expired, pinged)  # its last firing: no deadline after it exists

    assert actions.push_overdue_record(now=pinged + timedelta(seconds=100)) == 1

    assert downs(silent) == [pinged + timedelta(seconds=90)]
    assert downs(expired) == []
