"""import_incidents and export_incidents: the seed's data/incidents/*.json, our own format,
validation before any write, dry runs, partial imports, idempotency and the round trip."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from incidents import delivery
from incidents.models import Incident, IncidentEvent, NotificationChannel, NotificationDelivery

SEED = [
    {
        "id": "inc-1736937000000-api",
        "serviceId": "api",
        "serviceName": "API Gateway",
        "title": "API Gateway is down",
        "description": "Health check failing",
        "severity": "CRITICAL",
        "status": "RESOLVED",
        "createdAt": "2025-01-15T10:30:00.000Z",
        "updatedAt": "2025-01-15T11:05:00.000Z",
        "resolvedAt": "2025-01-15T11:00:00.000Z",
        "assignedTo": "oscar",
        "rootCause": "Database pool exhausted",
        "resolution": "Raised the pool size",
        "affectedChecks": 4,
        "estimatedImpact": "Every API call",
        "timeline": [
            {"timestamp": "2025-01-15T10:30:00.000Z", "action": "created",
             "description": "Incident created", "user": "system"},
            {"timestamp": "2025-01-15T10:41:00.000Z", "action": "status_changed",
             "description": "Investigating the database", "user": "oscar"},
            {"timestamp": "2025-01-15T11:00:00.000Z", "action": "resolved",
             "description": "Service recovered"},
        ],
    },
    {
        "id": "inc-1738396800000-billing",
        "serviceId": "billing",
        "serviceName": "Billing",
        "description": "Invoices are slow\nSince the deploy",
        "severity": "medium",
        "status": "in-progress",
        "createdAt": "2025-02-01T08:00:00+01:00",
        "affectedChecks": 2,
        "timeline": [],
    },
]  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, document, name: str = "incidents.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def failing(*args: str) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(*args, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


@pytest.fixture
def services(make_service, operator_user):
    make_service(id="api", name="API Gateway")
    make_service(id="billing", name="Billing")


def test_a_seed_file_imports_its_incidents_with_their_times(services, tmp_path, operator_user):
    out, _ = run("import_incidents", str(write(tmp_path, SEED)))
    assert out.strip().splitlines()[-1] == "created 2, updated 0, unchanged 0, invalid 0"
    api = Incident.objects.get(dedup_key="seed:inc-1736937000000-api")
    assert (api.service_id, api.title, api.severity, api.status) == (
        "api", "API Gateway is down", "critical", "resolved",
    )  # fmt: skip
    assert api.detected_at == api.impact_started_at == at("2025-01-15T10:30:00Z")
    assert api.resolved_at == at("2025-01-15T11:00:00Z")
    assert api.updated_at == at("2025-01-15T11:05:00Z")
    assert (api.assignee, api.failed_checks) == (operator_user, 4)
    assert (api.root_cause, api.resolution_notes) == (
        "Database pool exhausted",
        "Raised the pool size",
    )
    events = list(api.events.order_by("time", "id").values_list("kind", "time", "message"))
    assert events == [
        ("opened", at("2025-01-15T10:30:00Z"), "Incident created"),
        ("comment", at("2025-01-15T10:30:00Z"), "Imported from the earlier NOC"),
        ("status_changed", at("2025-01-15T10:41:00Z"), "Investigating the database"),
        ("resolved", at("2025-01-15T11:00:00Z"), "Service recovered"),
    ]
    investigating = api.events.get(kind="status_changed")
    assert (investigating.actor, investigating.data["user"]) == (operator_user, "oscar")
    assert api.events.get(kind="opened").actor is None  # "system" is nobody here
    note = api.events.get(message="Imported from the earlier NOC")
    assert note.data["seed"]["estimatedImpact"] == "Every API call"
    billing = Incident.objects.get(dedup_key="seed:inc-1738396800000-billing")
    assert (billing.status, billing.severity) == ("in_progress", "medium")
    assert billing.title == "Invoices are slow"  # no title in the seed's database rows
    assert billing.detected_at == at("2025-02-01T07:00:00Z")  # the offset is kept
    assert AuditEvent.objects.filter(action="create", target_type="incidents.incident").count() == 2


def test_imported_history_notifies_nobody(services, tmp_path, receiver, settings):
    settings.NOTIFICATION_ALLOW_PRIVATE = True
    delivery.channel_save(
        actor=None,
        channel=NotificationChannel(name="team", kind="webhook", url=receiver.url, is_default=True),
    )
    run("import_incidents", str(write(tmp_path, SEED)))
    assert IncidentEvent.objects.filter(kind="opened").exists()
    assert not NotificationDelivery.objects.exists()


def test_importing_twice_changes_nothing(services, tmp_path):
    path = write(tmp_path, SEED)
    run("import_incidents", str(path))
    events = IncidentEvent.objects.count()
    out, _ = run("import_incidents", str(path))
    assert out.strip().splitlines()[-1] == "created 0, updated 0, unchanged 2, invalid 0"
    assert IncidentEvent.objects.count() == events
    assert Incident.objects.count() == 2


def test_a_changed_seed_entry_updates_its_incident_and_adds_new_events(services, tmp_path):
    run("import_incidents", str(write(tmp_path, SEED)))
    changed = json.loads(json.dumps(SEED))
    changed[1].update(status="RESOLVED", resolvedAt="2025-02-01T09:00:00Z")
    changed[1]["timeline"] = [
        {"timestamp": "2025-02-01T09:00:00Z", "action": "resolved", "description": "Fixed"}
    ]
    out, _ = run("import_incidents", str(write(tmp_path, changed)), "-v", "2")
    assert "update inc-1738396800000-billing: events, resolved_at, status" in out
    billing = Incident.objects.get(dedup_key="seed:inc-1738396800000-billing")
    assert (billing.status, billing.resolved_at) == ("resolved", at("2025-02-01T09:00:00Z"))
    assert billing.events.filter(kind="resolved", message="Fixed").count() == 1


def test_a_directory_of_seed_files_is_read_in_order(services, tmp_path):
    folder = tmp_path / "incidents"
    folder.mkdir()
    write(folder, SEED[:1], "2025-01.json")
    write(folder, SEED[1:], "2025-02.json")
    out, _ = run("import_incidents", str(folder))
    assert "created 2" in out


NOT_A_TIME = "is not an ISO 8601 time"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "URGENT"}, "severity: 'URGENT' is not one of CRITICAL, HIGH, MEDIUM, LOW"),
        ({"status": "DONE"}, "status: 'DONE' is not one of NEW, INVESTIGATING, IN_PROGRESS"),
        ({"serviceId": "nope"}, "serviceId: no service 'nope' here (import services first)"),
        ({"createdAt": "yesterday"}, f"createdAt: 'yesterday' {NOT_A_TIME}"),
        ({"createdAt": "2025-01-15T10:30:00"}, "createdAt: '2025-01-15T10:30:00' has no time zone"),
        ({"resolvedAt": "2025-01-15T10:00:00Z"}, "resolvedAt: 2025-01-15T10:00:00+00:00 is before"),
        ({"resolvedAt": None}, "resolvedAt: a resolved incident needs the time it was resolved"),
        ({"affectedChecks": -1}, "affectedChecks: Ensure this value is greater than or equal to 0"),
        ({"timeline": [{"timestamp": "soon"}]}, f"timeline[0].timestamp: 'soon' {NOT_A_TIME}"),
        ({"metadata": {"score": float("nan")}}, "metadata.score: NaN is not a number JSON allows"),
    ],
)
def test_an_invalid_entry_is_named_with_its_field_and_nothing_is_written(
    services, tmp_path, change, message
):
    entries = json.loads(json.dumps(SEED))
    entries[0].update(change)
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps(entries, allow_nan=True))
    err = failing("import_incidents", str(path))
    assert f"entry 1 (inc-1736937000000-api): field {message}" in err
    assert not Incident.objects.exists()


def test_an_error_names_the_file_when_a_directory_is_read(services, tmp_path):
    folder = tmp_path / "incidents"
    folder.mkdir()
    write(folder, SEED[:1], "a.json")
    write(folder, [{**SEED[1], "severity": "huge"}], "b.json")
    err = failing("import_incidents", str(folder))
    assert "b.json entry 1 (inc-1738396800000-billing): field severity:" in err


def test_partial_imports_the_valid_entries(services, tmp_path):
    entries = [SEED[0], {**SEED[1], "serviceId": "nope"}]
    out, err = run("import_incidents", str(write(tmp_path, entries)), "--partial")
    assert "created 1, updated 0, unchanged 0, invalid 1" in out
    assert "field serviceId: no service 'nope'" in err
    assert Incident.objects.count() == 1


def test_a_dry_run_writes_nothing(services, tmp_path):
    out, _ = run("import_incidents", str(write(tmp_path, SEED)), "--dry-run")
    assert "create inc-1736937000000-api" in out
    assert out.strip().endswith("(dry run: nothing written)")
    assert not Incident.objects.exists()


def test_a_second_active_incident_for_a_service_is_refused(services, tmp_path):
    second = {**SEED[1], "id": "inc-other"}
    err = failing("import_incidents", str(write(tmp_path, [SEED[1], second])))
    assert "entry 2 (inc-other): field status: service billing has another active incident" in err
    assert "here (entry 1 (inc-1738396800000-billing))" in err


def test_unknown_people_are_left_empty_with_a_warning(services, tmp_path):
    entry = {**SEED[1], "assignedTo": "mallory"}
    _, err = run("import_incidents", str(write(tmp_path, [entry])))
    assert "assignedTo 'mallory' is not a user here: left empty" in err
    assert Incident.objects.get().assignee is None


def test_the_export_imports_back_the_same_incidents(services, tmp_path):
    run("import_incidents", str(write(tmp_path, SEED)))
    exported, _ = run("export_incidents")
    document = json.loads(exported)
    assert document["format"] == "noc-incidents/1"
    before = {
        i.pk: (i.title, i.status, i.detected_at, i.resolved_at, i.updated_at, i.assignee_id)
        for i in Incident.objects.all()
    }
    events = sorted(IncidentEvent.objects.values_list("incident_id", "kind", "time", "message"))
    Incident.objects.all().delete()
    out, _ = run("import_incidents", str(write(tmp_path, document, "export.json")))
    assert "created 2" in out
    after = {
        i.pk: (i.title, i.status, i.detected_at, i.resolved_at, i.updated_at, i.assignee_id)
        for i in Incident.objects.all()
    }
    assert after == before
    assert (
        sorted(IncidentEvent.objects.values_list("incident_id", "kind", "time", "message"))
        == events
    )
    again, _ = run("import_incidents", str(write(tmp_path, document, "export.json")))
    assert "unchanged 2" in again
    # The id sequence moved past the imported ids: the next incident opens with a new one.
    from incidents.actions import incident_create_manual
    from services.models import Service

    new = incident_create_manual(
        actor=None, service=Service.objects.get(id="api"), title="New", severity="low"
    )
    assert new.pk > max(before)
