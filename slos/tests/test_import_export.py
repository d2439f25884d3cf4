"""import_slos and export_slos: the seed's data/slos/slos.json, our own format, validation
before any write, the seed's error-rate targets, idempotency and the round trip."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from slos.models import SLO

SEED = [
    {
        "id": "slo-google-availability-30d",
        "serviceId": "google-monitor",
        "name": "Google 99.9% Availability (30 days)",
        "description": "Google should be available 99.9% of the time",
        "target": 99.9,
        "window": "30d",
        "sliType": "availability",
        "enabled": True,
        "createdAt": "2025-01-10T09:00:00.000Z",
        "updatedAt": "2025-01-12T09:00:00.000Z",
    },
    {
        "id": "slo-google-latency-24h",
        "serviceId": "google-monitor",
        "name": "Google < 200ms Response Time (24h)",
        "description": "95% of requests within 200ms",
        "target": 95,
        "window": "TWENTY_FOUR_HOURS",
        "sliType": "LATENCY",
        "threshold": 200,
        "enabled": True,
        "createdAt": "2025-01-10T09:00:00.000Z",
    },
    {
        "id": "slo-github-errors-7d",
        "serviceId": "github-monitor",
        "name": "GitHub errors under 1% (7 days)",
        "description": "",
        "target": 99,
        "window": "7d",
        "sliType": "errorRate",
        "threshold": 1,
        "enabled": False,
        "createdAt": "2025-01-11T09:00:00.000Z",
        "currentValue": 99.2,
        "compliance": True,
    },
]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path: Path, document, name: str = "slos.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def failing(*args: str) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(*args, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


@pytest.fixture
def services(make_service):
    make_service(id="google-monitor", name="Google")
    make_service(id="github-monitor", name="GitHub")


@pytest.mark.parametrize("wrap", [False, True], ids=["data-list", "config-object"])
def test_a_seed_file_creates_its_slos(services, tmp_path, wrap):
    out, err = run("import_slos", str(write(tmp_path, {"slos": SEED} if wrap else SEED)))
    assert out.strip().splitlines()[-1] == "created 3, updated 0, unchanged 0, invalid 0"
    assert "ignored seed keys: compliance, currentValue" in err
    google = SLO.objects.get(id="slo-google-availability-30d")
    assert (google.service_id, google.sli_type, google.target, google.window) == (
        "google-monitor", "availability", Decimal("99.9"), "30d",
    )  # fmt: skip
    assert google.created_at == datetime(2025, 1, 10, 9, tzinfo=UTC)
    assert google.updated_at == datetime(2025, 1, 12, 9, tzinfo=UTC)
    latency = SLO.objects.get(id="slo-google-latency-24h")
    assert (latency.sli_type, latency.window, latency.latency_threshold_ms) == (
        "latency",
        "24h",
        200,
    )
    errors = SLO.objects.get(id="slo-github-errors-7d")
    # The seed judged 99 as percent successful; here an error-rate target is the maximum failed.
    assert (errors.sli_type, errors.target, errors.enabled) == ("error_rate", Decimal("1"), False)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"target": 99.5}, Decimal("0.5")),
        ({"target": 2, "sliType": "ERROR_RATE"}, Decimal("2")),  # already a maximum
        ({"target": 99, "threshold": 1}, Decimal("1")),
    ],
)
def test_the_seeds_error_rate_targets_become_maximums(services, tmp_path, fields, expected):
    entry = {**SEED[2], "threshold": None, **fields}
    run("import_slos", str(write(tmp_path, [entry])))
    assert SLO.objects.get().target == expected


def test_importing_twice_changes_nothing(services, tmp_path):
    path = write(tmp_path, SEED)
    run("import_slos", str(path))
    out, _ = run("import_slos", str(path))
    assert out.strip().splitlines()[-1] == "created 0, updated 0, unchanged 3, invalid 0"
    assert SLO.objects.get(id="slo-google-availability-30d").created_at == datetime(
        2025, 1, 10, 9, tzinfo=UTC
    )


def test_a_changed_entry_updates_its_slo(services, tmp_path):
    run("import_slos", str(write(tmp_path, SEED)))
    changed = [{**SEED[0], "target": 99.95}]
    out, _ = run("import_slos", str(write(tmp_path, changed)), "-v", "2")
    assert "update slo-google-availability-30d: target" in out
    assert SLO.objects.get(id="slo-google-availability-30d").target == Decimal("99.95")


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (0, {"serviceId": "nope"}, "serviceId: no service 'nope' here (import services first)"),
        (
            2,
            {"sliType": "happy"},
            "sliType: 'happy' is not one of availability, latency, errorRate",
        ),
        (0, {"target": 120}, "target: The target must be strictly between 0 and 100"),
        (0, {"target": "high"}, "target: 'high' is not a number"),
        (0, {"window": "2w"}, "window: Unknown window '2w'"),
        (2, {"threshold": 2}, "threshold: an error rate of at most 2 % contradicts the target 99"),
        (0, {"createdAt": "last week"}, "createdAt: 'last week' is not an ISO 8601 time"),
        (0, {"target": float("inf")}, "target: Infinity is not a number JSON allows"),
    ],
)
def test_an_invalid_entry_is_named_with_its_field_and_nothing_is_written(
    services, tmp_path, index, change, message
):
    entries = json.loads(json.dumps(SEED))
    entries[index].update(change)
    path = tmp_path / "slos.json"
    path.write_text(json.dumps(entries, allow_nan=True))
    err = failing("import_slos", str(path))
    assert f"entry {index + 1} ({SEED[index]['id']}): field {message}" in err
    assert not SLO.objects.exists()


def test_a_latency_slo_without_a_threshold_is_refused(services, tmp_path):
    entry = {**SEED[1], "threshold": None}
    err = failing("import_slos", str(write(tmp_path, [entry])))
    assert "field threshold: A latency SLI needs a threshold in milliseconds." in err


def test_partial_and_dry_run(services, tmp_path):
    entries = [SEED[0], {**SEED[1], "serviceId": "nope"}]
    out, _ = run("import_slos", str(write(tmp_path, entries)), "--dry-run", "--partial")
    assert out.strip().endswith("(dry run: nothing written)")
    assert not SLO.objects.exists()
    out, _ = run("import_slos", str(write(tmp_path, entries)), "--partial")
    assert "created 1, updated 0, unchanged 0, invalid 1" in out
    assert list(SLO.objects.values_list("id", flat=True)) == ["slo-google-availability-30d"]


def test_the_export_imports_back_the_same_slos(services, tmp_path, admin_user):
    run("import_slos", str(write(tmp_path, SEED)))
    SLO.objects.filter(id="slo-google-latency-24h").update(
        owner=admin_user, time_zone="Asia/Kolkata"
    )
    exported, _ = run("export_slos")
    document = json.loads(exported)
    assert document["format"] == "noc-slos/1"
    targets = {row["id"]: row["target"] for row in document["slos"]}
    assert targets["slo-google-availability-30d"] == "99.9"  # the decimal as written
    columns = ["id", "service_id", "sli_type", "target", "window", "time_zone", "owner_id",
               "latency_threshold_ms", "enabled", "created_at", "updated_at"]  # fmt: skip
    before = list(SLO.objects.order_by("id").values_list(*columns))
    SLO.objects.all().delete()
    out, _ = run("import_slos", str(write(tmp_path, document, "export.json")))
    assert "created 3" in out
    assert list(SLO.objects.order_by("id").values_list(*columns)) == before
    again, _ = run("import_slos", str(write(tmp_path, document, "export.json")))
    assert "unchanged 3" in again
