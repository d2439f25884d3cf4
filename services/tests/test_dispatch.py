"""Claiming due checks: schedules advance, slots are claimed once, lost batches come back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from services import actions
from services.execution import run_slots
from services.models import CheckClaim, CheckGap, CheckResult, Service


def make_due(*services, at=None):
    """Due at `at`, and created before it (no missed slot is recorded before a service
    existed)."""
    at = at or timezone.now() - timedelta(seconds=1)
    Service.objects.filter(pk__in=[s.pk for s in services]).update(
        next_check_at=at, created_at=at - timedelta(hours=1)
    )
    return at


def test_a_due_service_is_claimed_once_and_its_schedule_advances(make_service):
    service = make_service(interval_seconds=30)
    due = make_due(service)
    now = timezone.now()
    slots = actions.checks_claim_due(now=now)
    assert [(s.service_id, s.due) for s in slots] == [(service.id, due)]
    service.refresh_from_db()
    assert service.next_check_at > now
    assert actions.checks_claim_due(now=now) == []
    assert CheckClaim.objects.filter(service=service, slot=due).exists()


def test_services_not_yet_due_disabled_or_push_are_not_claimed(make_service):
    later = make_service()
    Service.objects.filter(pk=later.pk).update(next_check_at=timezone.now() + timedelta(minutes=5))
    off = make_service(enabled=False)
    push = make_service(kind="push", url="", interval_seconds=300)
    make_due(off, push)
    assert actions.checks_claim_due() == []


def test_a_cron_schedule_with_seconds_advances_to_the_next_match(make_service):
    service = make_service(interval_seconds=None, cron="*/30 * * * * *", timeout_seconds=5)
    due = make_due(service, at=timezone.now().replace(second=0, microsecond=0))
    actions.checks_claim_due(now=due + timedelta(seconds=1))
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(seconds=30)


def missed_times(service) -> list[datetime]:
    return list(
        CheckResult.objects.filter(service_id=service.id, status="missed")
        .order_by("time")
        .values_list("time", flat=True)
    )


def test_a_service_claimed_intervals_late_runs_its_latest_slot_and_misses_the_rest(
    make_service,
):
    service = make_service(interval_seconds=60)
    now = timezone.now()
    due = make_due(service, at=now - timedelta(minutes=3, seconds=3))

    [slot] = actions.checks_claim_due(now=now)
    assert actions.check_gaps_record() == 3

    # The latest slot of its own grid runs (3 s late); the three before it are missed.
    assert slot.due == due + timedelta(minutes=3)
    assert missed_times(service) == [due + timedelta(minutes=m) for m in range(3)]
    assert "not dispatched in time" in CheckResult.objects.filter(service_id=service.id)[0].error
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(minutes=4)  # same phase, after now
    assert not CheckGap.objects.exists()


def test_a_slot_too_old_to_run_is_missed_and_the_service_stays_on_its_grid(make_service):
    service = make_service(interval_seconds=600)
    now = timezone.now()
    due = make_due(service, at=now - timedelta(minutes=7))

    assert actions.checks_claim_due(now=now) == []  # 7 minutes late: never run and back-dated
    actions.check_gaps_record()

    assert missed_times(service) == [due]
    assert not CheckClaim.objects.exists()
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(minutes=10)


def test_a_slot_claimed_within_a_tenth_of_its_interval_still_runs(make_service):
    service = make_service(interval_seconds=60)
    now = timezone.now()
    due = make_due(service, at=now - timedelta(seconds=5))
    assert [s.due for s in actions.checks_claim_due(now=now)] == [due]
    assert actions.check_gaps_record() == 0
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(seconds=60)


def test_a_slot_claimed_later_than_that_is_missed_and_the_next_one_keeps_the_phase(
    make_service,
):
    # After an outage, running every late slot at once would start a whole interval's worth
    # of the fleet in one second: they are missed, and each service resumes on its grid.
    service = make_service(interval_seconds=60)
    now = timezone.now()
    due = make_due(service, at=now - timedelta(seconds=7))
    assert actions.checks_claim_due(now=now) == []
    actions.check_gaps_record()
    assert missed_times(service) == [due]
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(seconds=60)


def test_a_due_time_older_than_the_service_records_nothing_missed(make_service):
    # Fixtures carry old due times: nothing was missed before the service existed.
    service = make_service(interval_seconds=60)
    Service.objects.filter(pk=service.pk).update(next_check_at=datetime(2026, 1, 1, tzinfo=UTC))
    now = timezone.now()
    actions.checks_claim_due(now=now)
    actions.check_gaps_record()
    assert missed_times(service) == []
    service.refresh_from_db()
    assert now < service.next_check_at <= now + timedelta(seconds=60)
    assert service.next_check_at.second == 0  # the grid of 2026-01-01, whole minutes
    assert service.next_check_at.microsecond == 0


def test_a_fleet_claimed_after_an_outage_keeps_its_phases(make_service):
    fleet = [make_service(interval_seconds=60) for _ in range(40)]
    phases = {s.id: s.next_check_at for s in fleet}
    # The dispatcher stopped for ten minutes: every service is ten intervals late.
    for service in fleet:
        make_due(service, at=service.next_check_at - timedelta(minutes=10))
    now = max(phases.values())

    slots = actions.checks_claim_due(now=now)
    actions.check_gaps_record()

    nexts = dict(Service.objects.filter(pk__in=phases).values_list("id", "next_check_at"))
    for sid, before in phases.items():
        assert (nexts[sid] - before) % timedelta(seconds=60) == timedelta(0)
    assert (max(nexts.values()) - min(nexts.values())).total_seconds() > 20
    # Every slot of the ten minutes is either run (the latest) or recorded missed, once.
    for service in fleet:
        ran = [s.due for s in slots if s.service_id == service.id]
        recorded = missed_times(service) + ran
        assert len(recorded) == len(set(recorded)) == 11
        assert all((t - phases[service.id]) % timedelta(seconds=60) == timedelta(0)
                   for t in recorded)  # fmt: skip


def test_a_long_outage_is_written_in_bounded_runs(make_service):
    fleet = [make_service(interval_seconds=1, timeout_seconds=1) for _ in range(3)]
    now = timezone.now()
    make_due(*fleet, at=now - timedelta(hours=2))

    actions.checks_claim_due(now=now)
    runs = []
    while written := actions.check_gaps_record(budget=10_000):
        runs.append(written)

    assert runs == [10_000, 10_000, 3 * 7200 - 20_000]
    assert CheckResult.objects.filter(status="missed").count() == 3 * 7200
    assert not CheckGap.objects.exists()


def test_a_cron_service_late_misses_each_firing_it_skipped(make_service):
    service = make_service(interval_seconds=None, cron="*/30 * * * * *", timeout_seconds=5)
    due = make_due(service, at=timezone.now().replace(second=0, microsecond=0))
    now = due + timedelta(minutes=2, seconds=2)

    [slot] = actions.checks_claim_due(now=now)
    actions.check_gaps_record()

    assert slot.due == due + timedelta(minutes=2)
    assert missed_times(service) == [due + timedelta(seconds=30 * k) for k in range(4)]
    service.refresh_from_db()
    assert service.next_check_at == due + timedelta(minutes=2, seconds=30)


def test_a_slot_that_already_has_a_result_keeps_it(make_service):
    service = make_service(interval_seconds=60)
    now = timezone.now()
    due = make_due(service, at=now - timedelta(minutes=2, seconds=5))
    actions.check_results_record(
        results=[actions.Observation(service.id, due, due, "up", response_time_ms=5.0)],
        claimed=False,
    )
    actions.checks_claim_due(now=now)
    actions.check_gaps_record()
    statuses = dict(CheckResult.objects.filter(service_id=service.id).values_list("time", "status"))
    assert statuses == {due: "up", due + timedelta(minutes=1): "missed"}


def test_a_stored_cron_that_never_fires_again_does_not_stop_dispatch(make_service):
    broken, fine = make_service(interval_seconds=60), make_service(interval_seconds=60)
    # Stored before validation refused such crons (or written around it).
    Service.objects.filter(pk=broken.pk).update(cron="0 0 0 31 2 *", interval_seconds=None)
    make_due(broken, fine)
    now = timezone.now()

    claimed = {s.service_id for s in actions.checks_claim_due(now=now)}

    assert claimed == {broken.id, fine.id}
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.next_check_at is None
    assert now < fine.next_check_at <= now + timedelta(seconds=60)


def test_a_fleet_on_one_interval_is_spread_over_that_interval(make_service):
    nexts = [make_service(interval_seconds=60).next_check_at for _ in range(40)]
    spread = (max(nexts) - min(nexts)).total_seconds()
    assert spread > 20  # 40 uniform draws over 60 s land on one second with negligible odds


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_claim_the_same_slot(target):
    services = [
        actions.service_create(actor=None, id=f"race-{i}", name=f"r{i}", url=f"{target}/ok")
        for i in range(300)
    ]
    make_due(*services)
    claimed: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def dispatcher(index: int) -> None:
        barrier.wait()
        try:
            for _ in range(5):
                claimed[index].extend(actions.checks_claim_due(limit=40))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = claimed[0] + claimed[1]
    assert len(everything) == len({(s.service_id, s.due) for s in everything}) == 300
    assert claimed[0] and claimed[1], "both dispatchers should have taken a share"
    assert CheckClaim.objects.count() == 300


def test_running_a_batch_twice_records_each_slot_once(make_service):
    service = make_service()
    make_due(service)
    slots = actions.checks_claim_due()
    assert len(run_slots(slots)) == 1
    assert run_slots(slots) == []
    assert CheckResult.objects.filter(service_id=service.id).count() == 1
    assert not CheckClaim.objects.exists()


def test_a_batch_no_worker_finished_is_dispatched_again_then_recorded_as_missed(make_service):
    service = make_service(timeout_seconds=2, interval_seconds=600)
    due = make_due(service)
    [slot] = actions.checks_claim_due()
    # The worker that took the batch died: nothing recorded, the claim stays.
    lease = CheckClaim.objects.get(service=service).lease_until
    assert actions.checks_reclaim_expired(now=lease - timedelta(seconds=1)) == []
    again = actions.checks_reclaim_expired(now=lease + timedelta(seconds=1))
    assert again == [slot]
    assert CheckClaim.objects.get(service=service).attempts == 2
    # That one died too: the slot is recorded as missed, never silently dropped.
    lease = CheckClaim.objects.get(service=service).lease_until
    assert actions.checks_reclaim_expired(now=lease + timedelta(seconds=1)) == []
    result = CheckResult.objects.get(service_id=service.id, time=due)
    assert result.status == "missed"
    assert "no worker finished" in result.error
    assert not CheckClaim.objects.exists()


def test_a_lost_claim_found_long_after_its_slot_is_missed_not_run_again(make_service):
    # No dispatcher ran for days: running the check now would record today's outcome days back.
    service = make_service(timeout_seconds=2)
    old = timezone.now() - timedelta(days=3)
    CheckClaim.objects.create(service=service, slot=old, lease_until=old + timedelta(seconds=62))
    assert actions.checks_reclaim_expired() == []
    result = CheckResult.objects.get(service_id=service.id)
    assert (result.time, result.status, result.started_at) == (old, "missed", None)
    assert "lease ran out over 0:05:00 before it was reclaimed" in result.error
    assert not CheckClaim.objects.exists()


def test_a_lost_slot_whose_next_slot_is_due_is_missed_not_run_again(make_service):
    # The lease (timeout + grace) outlasts a 30 s interval: a retry would run off the grid.
    service = make_service(timeout_seconds=2, interval_seconds=30)
    due = make_due(service)
    actions.checks_claim_due()
    lease = CheckClaim.objects.get(service=service).lease_until
    assert actions.checks_reclaim_expired(now=lease + timedelta(seconds=1)) == []
    result = CheckResult.objects.get(service_id=service.id, time=due)
    assert result.status == "missed"
    assert "before the service's next slot was due" in result.error


def test_the_slowest_check_allowed_still_gets_its_retry(make_service):
    # timeout 240 s: the lease ends 5 minutes after the slot; reclaimed at once, it is retried.
    service = make_service(interval_seconds=600, timeout_seconds=240)
    due = make_due(service)
    [slot] = actions.checks_claim_due()
    lease = CheckClaim.objects.get(service=service).lease_until
    assert lease - due == timedelta(minutes=5)
    assert actions.checks_reclaim_expired(now=lease + timedelta(seconds=5)) == [slot]
    assert not CheckResult.objects.filter(service_id=service.id).exists()


def test_a_batch_delivered_again_long_after_its_slots_records_them_missed(target, make_service):
    # E.g. the broker redelivers an unacknowledged batch when a worker restarts hours later.
    stale, fresh = make_service(url=f"{target}/ok"), make_service(url=f"{target}/ok")
    old, now = timezone.now() - timedelta(hours=2), timezone.now()

    run_slots([actions.Slot(stale.id, old), actions.Slot(fresh.id, now)])

    late = CheckResult.objects.get(service_id=stale.id)
    assert (late.time, late.status, late.started_at) == (old, "missed", None)
    assert "more than 0:15:00 after its slot" in late.error
    assert CheckResult.objects.get(service_id=fresh.id).status == "up"


def test_a_batch_reaching_a_worker_after_the_next_slot_is_recorded_missed(target, make_service):
    # E.g. batches restored to the queue at a warm shutdown and taken by the next worker.
    late, fresh = (make_service(url=f"{target}/ok", interval_seconds=10) for _ in range(2))
    now = timezone.now()

    run_slots([actions.Slot(late.id, now - timedelta(seconds=12)), actions.Slot(fresh.id, now)])

    missed = CheckResult.objects.get(service_id=late.id)
    assert (missed.status, missed.started_at) == ("missed", None)
    assert "after the service's next slot was due" in missed.error
    assert CheckResult.objects.get(service_id=fresh.id).status == "up"


def test_a_slow_worker_finishing_after_its_slot_was_reclaimed_does_not_duplicate(make_service):
    service = make_service(interval_seconds=600)
    make_due(service)
    slots = actions.checks_claim_due()
    lease = CheckClaim.objects.get(service=service).lease_until
    again = actions.checks_reclaim_expired(now=lease + timedelta(seconds=1))
    run_slots(again)
    run_slots(slots)  # the first worker was only slow
    assert CheckResult.objects.filter(service_id=service.id).count() == 1


def test_slot_messages_round_trip():
    slot = actions.Slot("api", datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    assert actions.Slot.from_message(slot.as_message()) == slot


@pytest.mark.parametrize("interval", [1, 7, 60, 3600, 86400, None])
@pytest.mark.parametrize(
    "late_seconds", [-0.9, 0, 0.05, 0.1, 0.7, 1, 5.9, 6, 6.1, 59, 299, 300, 301, 4000]
)
def test_the_on_time_fast_path_plans_what_plan_claim_plans(interval, late_seconds):
    """schedule.on_time answers from row values for the services plan_claim would run on
    their due slot with no gap; it must never differ from plan_claim, and it must hand every
    other case to it."""
    from services import schedule

    now = datetime(2026, 12, 5, 12, 0, 0, 500_000, tzinfo=UTC)
    due = now - timedelta(seconds=late_seconds)
    service = Service(
        id="s", interval_seconds=interval, cron="", next_check_at=due,
        created_at=due - timedelta(days=1),
    )  # fmt: skip
    step = schedule.on_time(due, interval, "", now)
    plan = schedule.plan_claim(service, now)
    if step is not None:
        assert plan == schedule.Plan(run=due, gap_from=None, gap_until=None, next=due + step)
    else:
        assert (
            plan.run != due
            or plan.gap_from is not None
            or plan.next != due + timedelta(seconds=interval or 60)
        )
    assert schedule.on_time(due, interval, "*/5 * * * * *", now) is None  # crons: plan_claim


def test_claims_carry_the_lease_of_the_service_s_timeout_and_retries(make_service, settings):
    settings.NOC_CLAIM_GRACE_SECONDS = 7
    on_time = make_service(timeout_seconds=2.5, retries=2)
    late = make_service(timeout_seconds=4, retries=0, interval_seconds=60)
    due = make_due(on_time)
    make_due(late, at=timezone.now() - timedelta(seconds=61))  # a step late: plan_claim
    slots = {s.service_id: s.due for s in actions.checks_claim_due(now=timezone.now())}
    leases = dict(CheckClaim.objects.values_list("service_id", "lease_until"))
    assert leases[on_time.id] == due + timedelta(seconds=2.5 * 3 + 7)
    assert leases[late.id] == slots[late.id] + timedelta(seconds=4 + 7)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "http", "headers": {"X-A": "1"}, "expected_status": [200], "json_path": "a"},
        {"kind": "tcp", "url": "", "host": "127.0.0.1", "port": 5432},
        {"kind": "tls", "url": "", "host": "example.org", "cert_min_days": 7},
        {"kind": "dns", "url": "", "dns_name": "example.org", "dns_expected": "1.2.3.4"},
        {"interval_seconds": None, "cron": "*/30 * * * * *"},
    ],
    ids=["http", "tcp", "tls", "dns", "cron"],
)
def test_a_batch_loads_what_running_its_slots_reads_and_nothing_more(
    make_service, django_assert_num_queries, fields
):
    """run_slots loads its services with RUN_FIELDS only: building a spec and judging a slot
    late must not touch a deferred field (each would cost a query per service)."""
    from services.execution import RUN_FIELDS, _too_late, spec_for

    service = make_service(**fields)
    full = spec_for(Service.objects.get(pk=service.pk))
    loaded = Service.objects.only(*RUN_FIELDS).get(pk=service.pk)
    now = timezone.now()
    with django_assert_num_queries(0):
        assert spec_for(loaded) == full
        assert _too_late(loaded, actions.Slot(service.id, now), now) == ""
        assert loaded.enabled
