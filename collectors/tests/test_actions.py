"""Runs: the one-running constraint, dispatch claims and leases, dead runs, cleanup."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from collectors import actions, queries
from collectors.actions import HOST
from collectors.models import CollectorRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def collector(make_collector):
    return make_collector(url="http://127.0.0.1:9/metrics", interval_seconds=10, timeout_seconds=2)


def test_the_database_refuses_a_second_running_run_of_a_collector(collector):
    CollectorRun.objects.create(collector=collector)
    with pytest.raises(IntegrityError), transaction.atomic():
        CollectorRun.objects.create(collector=collector)
    CollectorRun.objects.create(collector=collector, status="stopped")  # history is fine


def test_starting_a_running_collector_names_the_running_run(collector):
    run = actions.collector_run_start(actor=None, collector=collector)
    with pytest.raises(actions.RunAlreadyRunning) as refused:
        actions.collector_run_start(actor=None, collector=collector)
    assert refused.value.run == run


def test_dispatch_claims_each_due_run_once_and_moves_it_one_interval_on(collector):
    run = actions.collector_run_start(actor=None, collector=collector)
    now = timezone.now()
    [slot] = actions.collector_runs_claim_due(now=now)
    assert slot.run_id == run.pk and slot.due == run.started_at
    assert actions.collector_runs_claim_due(now=now + timedelta(seconds=30)) == []  # still held
    run.refresh_from_db()
    assert run.next_run_at == run.started_at + timedelta(seconds=10)
    assert run.lease_until == slot.due + timedelta(seconds=2 + 60)  # NOC_CLAIM_GRACE_SECONDS


def test_a_run_that_fell_behind_runs_its_latest_slot_only(collector):
    run = actions.collector_run_start(actor=None, collector=collector)
    late = run.started_at + timedelta(seconds=95)
    [slot] = actions.collector_runs_claim_due(now=late)
    assert slot.due == run.started_at + timedelta(seconds=90)


def test_an_expired_lease_is_handed_out_again_once_while_its_next_slot_is_not_due(make_collector):
    collector = make_collector(url="http://127.0.0.1:9/", interval_seconds=300, timeout_seconds=2)
    run = actions.collector_run_start(actor=None, collector=collector)
    [slot] = actions.collector_runs_claim_due(now=run.started_at)
    after_lease = slot.due + timedelta(seconds=63)
    assert actions.collector_runs_reclaim_expired(now=after_lease) == [slot]
    run.refresh_from_db()
    assert (run.claimed_slot, run.attempts) == (slot.due, 2)
    # The second attempt dies too: the claim is dropped, the next slot is claimed as usual.
    assert actions.collector_runs_reclaim_expired(now=after_lease + timedelta(seconds=63)) == []
    run.refresh_from_db()
    assert (run.claimed_slot, run.lease_until) == (None, None)
    [following] = actions.collector_runs_claim_due(now=slot.due + timedelta(seconds=300))
    assert following.due == slot.due + timedelta(seconds=300)


def test_a_run_without_heartbeat_past_its_allowance_is_marked_dead_with_the_reason(collector):
    now = timezone.now()
    # allowance: max(3 × 10 s, 10 s + 2 s + 60 s) + 30 s grace = 102 s
    quiet = CollectorRun.objects.create(
        collector=collector, last_heartbeat_at=now - timedelta(seconds=103)
    )
    assert actions.collector_runs_mark_dead(now=now) == [quiet.pk]
    quiet.refresh_from_db()
    assert quiet.status == "error" and quiet.stopped_at == now
    assert quiet.last_error.startswith("no heartbeat for")
    assert queries.runs_in_error() == [quiet]


def test_a_run_within_its_allowance_is_left_running(collector):
    now = timezone.now()
    CollectorRun.objects.create(collector=collector, last_heartbeat_at=now - timedelta(seconds=101))
    assert actions.collector_runs_mark_dead(now=now) == []


def test_a_run_whose_worker_process_on_this_host_is_gone_is_dead_sooner(collector):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = timezone.now()
    seen = now - timedelta(seconds=30)  # past interval + lease (27 s), within the allowance
    dead = CollectorRun.objects.create(
        collector=collector, host=HOST, pid=gone.pid, last_heartbeat_at=seen
    )
    assert actions.collector_runs_mark_dead(now=now) == [dead.pk]
    dead.refresh_from_db()
    assert f"worker process {gone.pid} on {HOST} is gone" in dead.last_error


def test_a_live_worker_process_or_another_host_is_not_judged_by_pid(make_collector):
    import os

    now, seen = timezone.now(), timezone.now() - timedelta(seconds=30)
    url = "http://127.0.0.1:9/"
    alive = make_collector(url=url, interval_seconds=10, timeout_seconds=2)
    elsewhere = make_collector(url=url, interval_seconds=10, timeout_seconds=2)
    CollectorRun.objects.create(collector=alive, host=HOST, pid=os.getpid(), last_heartbeat_at=seen)
    CollectorRun.objects.create(
        collector=elsewhere, host="other", pid=999_999, last_heartbeat_at=seen
    )
    assert actions.collector_runs_mark_dead(now=now) == []


def test_cleanup_deletes_only_stopped_runs_older_than_the_retention(collector, settings):
    settings.COLLECTOR_RUN_RETENTION_DAYS = 7
    now = timezone.now()
    old = now - timedelta(days=8)

    def run(status: str, stopped_at):
        return CollectorRun.objects.create(
            collector=collector, status=status, stopped_at=stopped_at
        )

    run("stopped", old)
    kept = [
        run("stopped", now - timedelta(days=6)),
        run("error", old),
        CollectorRun.objects.create(collector=collector, started_at=old),  # running
    ]
    assert actions.collector_runs_cleanup(now=now) == 1
    assert sorted(CollectorRun.objects.values_list("pk", flat=True)) == sorted(r.pk for r in kept)


def test_disabling_a_collector_stops_its_run(collector):
    run = actions.collector_run_start(actor=None, collector=collector)
    actions.collector_update(actor=None, collector=collector, enabled=False)
    run.refresh_from_db()
    assert run.status == "stopped" and run.stopped_at is not None
