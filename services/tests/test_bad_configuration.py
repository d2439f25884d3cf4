"""Configurations and check answers that used to fail a whole batch (or a request with a 500):
impossible cron expressions, malformed headers, NUL characters, non-finite numbers and checks
that would outlive the run_checks task. Each is refused at validation, naming its field, and a
row saved before that rule is recorded as one `down` result without costing its batch-mates."""

from __future__ import annotations

import math

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from services import actions, execution, tasks
from services.actions import Observation, Slot
from services.checks.testing import serve_dns
from services.models import CheckResult, MaintenanceWindow, Service
from services.validation import validate_service

pytestmark = pytest.mark.django_db

IMPOSSIBLE_CRONS = ["0 0 0 31 2 *", "0 0 0 1 1 * 2001"]


def refusal(service: Service) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        validate_service(service)
    return caught.value.message_dict


# --- impossible cron expressions --------------------------------------------------------------


@pytest.mark.parametrize("cron", IMPOSSIBLE_CRONS)
def test_a_cron_that_never_fires_is_refused_naming_cron(cron):
    service = Service(id="nightly", name="n", url="https://example.com/", cron=cron)
    service.interval_seconds = None

    errors = refusal(service)

    assert "no upcoming occurrence" in " ".join(errors["cron"])


@pytest.mark.parametrize("cron", ["0 0 0 31 2 *", "0 0 3 * * * 2090"])
def test_a_window_with_a_cron_that_never_fired_covers_nothing(cron):
    window = MaintenanceWindow(name="never", cron=cron, duration_minutes=10)

    assert not window.covers(timezone.now())


def test_a_stored_window_with_an_impossible_cron_does_not_fail_recording(make_service):
    quiet, attached = make_service(), make_service()
    window = MaintenanceWindow.objects.create(name="never", cron="0 0 0 31 2 *", duration_minutes=5)
    window.services.add(attached)
    now = timezone.now()

    actions.check_results_record(
        results=[
            Observation(service_id=s.id, due=now, started_at=now, status="up")
            for s in (quiet, attached)
        ]
    )

    assert CheckResult.objects.filter(service_id__in=[quiet.id, attached.id]).count() == 2
    assert not CheckResult.objects.get(service_id=attached.id).in_maintenance


# --- headers of every kind ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [["x"], {"X-Retries": 3}, "a: b"])
@pytest.mark.parametrize(
    "kind_fields",
    [
        {"kind": "tcp", "host": "db.example.com", "port": 5432},
        {"kind": "dns", "dns_name": "example.com"},
        {"kind": "tls", "host": "example.com"},
        {"kind": "push"},
    ],
    ids=["tcp", "dns", "tls", "push"],
)
def test_headers_that_are_not_names_to_strings_are_refused_for_every_kind(kind_fields, headers):
    service = Service(id="s", name="s", headers=headers, **kind_fields)

    assert "headers" in refusal(service)


def test_a_header_with_a_line_break_is_refused():
    service = Service(id="s", name="s", url="https://example.com/", headers={"X-A": "b\r\nC: d"})

    assert "line break" in " ".join(refusal(service)["headers"])


def broken_headers(service: Service) -> Service:
    """Headers saved before every kind's were validated (the update skips validation)."""
    Service.objects.filter(pk=service.pk).update(headers=["x"])
    return Service.objects.get(pk=service.pk)


def test_one_unbuildable_service_is_recorded_down_and_its_batch_mates_still_run(make_service):
    good = make_service(allow_private=True)
    bad = broken_headers(make_service(kind="tcp", url="", host="127.0.0.1", port=9))
    now = timezone.now()

    recorded = execution.run_slots([Slot(good.id, now), Slot(bad.id, now)])

    assert {r.service.id: r.result.status for r in recorded} == {good.id: "up", bad.id: "down"}
    assert "headers" in CheckResult.objects.get(service_id=bad.id).error


def test_check_now_of_an_unbuildable_service_records_down_instead_of_raising(make_service):
    bad = broken_headers(make_service(kind="tcp", url="", host="127.0.0.1", port=9))

    recorded = execution.check_now(bad)

    assert recorded.result.status == "down"
    assert "headers" in recorded.result.error


# --- NUL characters and non-finite numbers ------------------------------------------------------


def test_a_nul_in_a_dns_answer_is_stored_replaced_and_the_batch_is_recorded(make_service):
    with serve_dns({("nul.noc.test", "TXT"): ['"v=spf1\\000x"']}) as server:
        dns = make_service(
            kind="dns",
            url="",
            dns_name="nul.noc.test",
            dns_record_type="TXT",
            dns_server=server.address,
            allow_private=True,
        )
        web = make_service(allow_private=True)
        now = timezone.now()

        execution.run_slots([Slot(dns.id, now), Slot(web.id, now)])

    result = CheckResult.objects.get(service_id=dns.id)
    assert result.status == "up", result.error
    assert result.details["answers"] == ["v=spf1\ufffdx"]
    assert CheckResult.objects.filter(service_id=web.id).exists()


def test_a_nul_in_an_error_or_a_detail_key_is_replaced():
    outcome = execution.Outcome.down("bad\x00reply", details={"k\x00": ["v\x00", 1, {"n": "\x00"}]})

    observation = execution.observation("s", timezone.now(), timezone.now(), outcome)

    assert observation.error == "bad\ufffdreply"
    assert observation.details == {"k\ufffd": ["v\ufffd", 1, {"n": "\ufffd"}]}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "we\x00b"}, "name"),
        ({"body": "\x00"}, "body"),
        ({"tags": ["ok", "b\x00d"]}, "tags"),
        ({"headers": {"X-A": "b\x00"}}, "headers"),
        ({"json_expected": {"status": ["\x00"]}}, "json_expected"),
        ({"json_expected": math.nan}, "json_expected"),
        ({"timeout_seconds": math.nan}, "timeout_seconds"),
        ({"timeout_seconds": math.inf}, "timeout_seconds"),
    ],
    ids=["name", "body", "tags", "headers", "json", "json-nan", "nan", "inf"],
)
def test_what_postgresql_cannot_store_is_refused_naming_the_field(fields, field):
    # The admin form and imports reach validation without the API's JSON parser.
    service = Service(**{"id": "web", "name": "Web", "url": "https://example.com/", **fields})

    assert field in refusal(service)


# --- checks that would outlive the run_checks task ----------------------------------------------


def test_the_check_bound_leaves_room_below_the_tasks_time_limit():
    assert tasks.run_checks.soft_time_limit > tasks.MAX_CHECK_SECONDS


@pytest.mark.parametrize(
    ("timeout", "retries", "allowed"),
    [(240, 0, True), (241, 0, False), (59, 3, True), (60, 3, False), (0.01, 2000, False)],
)
def test_a_check_whose_worst_case_outlives_a_batch_is_refused(timeout, retries, allowed):
    service = Service(
        id="slow",
        name="Slow",
        url="https://example.com/",
        interval_seconds=3600,
        timeout_seconds=timeout,
        retries=retries,
    )

    if allowed:
        validate_service(service)
    else:
        assert "at most 240s" in " ".join(refusal(service)["timeout_seconds"])


def test_a_push_service_has_no_check_to_bound():
    validate_service(Service(id="p", name="P", kind="push", timeout_seconds=1000, retries=9))
