"""import_services and export_services: the seed's services.json, our own format, validation
before any write, dry runs, partial imports, idempotency and the export round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from noc.progress import Progress
from services import actions
from services.importing import FORMAT, config_field_names, service_config
from services.models import Service

SEED = [
    {
        "id": "api-gateway",
        "name": "API Gateway",
        "url": "https://api.example.com/health",
        "interval": "*/30 * * * * *",
        "critical": True,
        "enabled": True,
        "tags": ["api", "critical"],
        "healthCheck": {"expectedStatus": [200, 201], "maxResponseTime": 2000},
    },
    {
        "id": "billing",
        "name": "Billing",
        "url": "https://billing.example.com/",
        "interval": 60,
        "critical": False,
        "enabled": False,
        "tags": [],
        "description": "Invoices",
        "timeout": 5000,
        "healthCheck": {"expectedStatus": 204},
    },
    {"id": "search", "name": "Search", "url": "https://search.example.com/", "interval": "120"},
]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_file(tmp_path: Path, document, *options: str) -> tuple[str, str]:
    path = tmp_path / "services.json"
    path.write_text(json.dumps(document))
    return run("import_services", str(path), *options)


def failing_import(tmp_path: Path, document, *options: str) -> str:
    err = io.StringIO()
    path = tmp_path / "services.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError):
        call_command("import_services", str(path), *options, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def with_bad_url(entries: list[dict], index: int) -> list[dict]:
    entries = [dict(e) for e in entries]
    entries[index]["url"] = "ftp://files.example.com/"
    return entries


# --- the seed's shape -------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [False, True], ids=["list", "services-object"])
def test_a_seed_file_creates_its_services(db, tmp_path, wrap):
    out, _ = import_file(tmp_path, {"services": SEED} if wrap else SEED)

    assert out.strip().splitlines()[-1] == "created 3, updated 0, unchanged 0, invalid 0"
    gateway = Service.objects.get(pk="api-gateway")
    assert (gateway.name, gateway.kind, gateway.url) == (
        "API Gateway",
        "http",
        "https://api.example.com/health",
    )
    assert (gateway.cron, gateway.interval_seconds) == ("*/30 * * * * *", None)
    assert gateway.expected_status == [200, 201]
    assert gateway.max_response_time_ms == 2000
    assert gateway.critical and gateway.tags == ["api", "critical"]


def test_a_numeric_interval_and_a_digit_string_become_seconds(db, tmp_path):
    import_file(tmp_path, SEED)

    billing = Service.objects.get(pk="billing")
    assert (billing.interval_seconds, billing.cron) == (60, "")
    assert billing.timeout_seconds == 5.0  # the seed's milliseconds
    assert billing.expected_status == [204]
    assert billing.description == "Invoices"
    assert not billing.enabled and billing.status == "paused"
    assert Service.objects.get(pk="search").interval_seconds == 120


def test_unknown_seed_keys_are_reported_as_ignored(db, tmp_path):
    entry = {**SEED[2], "alertConfig": {"email": True}}

    out, err = import_file(tmp_path, [entry])

    assert "ignored seed keys: alertConfig" in err
    assert "created 1" in out


def test_a_seed_error_is_named_in_the_seeds_words(db, tmp_path):
    entry = {**SEED[0], "interval": "every half minute"}

    err = failing_import(tmp_path, [entry])

    assert "entry 1 (api-gateway): field interval: " in err
    assert not Service.objects.exists()


# --- validation before any write ---------------------------------------------------------------


def test_one_bad_entry_writes_nothing_and_names_the_entry_and_field(db, tmp_path):
    err = failing_import(tmp_path, with_bad_url(SEED, 1))

    assert "entry 2 (billing): field url: " in err
    assert "ftp" in err
    assert not Service.objects.exists()


def test_every_invalid_entry_is_reported_not_just_the_first(db, tmp_path):
    entries = with_bad_url(SEED, 0)
    entries[2] = {**entries[2], "healthCheck": {"expectedStatus": [999]}}

    err = failing_import(tmp_path, entries)

    assert "entry 1 (api-gateway): field url: " in err
    assert "entry 3 (search): field healthCheck.expectedStatus: 999 is not an HTTP status" in err


def test_partial_imports_the_valid_entries_and_reports_the_rest(db, tmp_path):
    out, err = import_file(tmp_path, with_bad_url(SEED, 1), "--partial")

    assert "created 2, updated 0, unchanged 0, invalid 1" in out
    assert "entry 2 (billing): field url: " in err
    assert set(Service.objects.values_list("id", flat=True)) == {"api-gateway", "search"}


def test_duplicate_ids_in_one_file_are_refused(db, tmp_path):
    err = failing_import(tmp_path, [SEED[2], {**SEED[2], "name": "Search again"}])

    assert "entry 2 (search): field id: search is already used by entry 1" in err
    assert not Service.objects.exists()


def test_an_entry_without_an_id_is_refused(db, tmp_path):
    err = failing_import(tmp_path, [{"name": "Nameless", "url": "https://x.example.com/"}])

    assert "entry 1 (no id): field id: an id is required" in err


def test_a_file_that_is_not_json_is_refused(db, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{")

    with pytest.raises(CommandError, match="not valid JSON: line 1"):
        call_command("import_services", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def test_an_unknown_format_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="unsupported format"):
        import_file(tmp_path, {"format": "noc-services/9", "services": []})


# --- dry run and idempotency ------------------------------------------------------------------


def test_dry_run_reports_the_plan_and_writes_nothing(db, tmp_path):
    actions.service_create(
        actor=None, id="search", name="Old name", url="https://search.example.com/"
    )

    out, _ = import_file(tmp_path, SEED, "--dry-run")

    assert "create api-gateway" in out
    assert "update search: interval_seconds, name" in out
    assert "created 2, updated 1, unchanged 0, invalid 0 (dry run: nothing written)" in out
    assert list(Service.objects.values_list("id", "name")) == [("search", "Old name")]


def test_a_second_import_changes_nothing(db, tmp_path):
    import_file(tmp_path, SEED)
    before = {s.id: s.updated_at for s in Service.objects.all()}

    out, _ = import_file(tmp_path, SEED)

    assert out.strip() == "created 0, updated 0, unchanged 3, invalid 0"
    assert {s.id: s.updated_at for s in Service.objects.all()} == before


def test_a_changed_entry_updates_only_that_service(db, tmp_path):
    import_file(tmp_path, SEED)
    changed = [SEED[0], SEED[1], {**SEED[2], "url": "https://search2.example.com/"}]

    out, _ = import_file(tmp_path, changed)

    assert out.strip() == "created 0, updated 1, unchanged 2, invalid 0"
    assert Service.objects.get(pk="search").url == "https://search2.example.com/"


# --- our own format ---------------------------------------------------------------------------


def test_export_writes_the_own_format_with_every_config_field(db):
    actions.service_create(actor=None, id="web", name="Web", url="https://web.example.com/")

    out, _ = run("export_services")

    document = json.loads(out)
    assert document["format"] == FORMAT
    [web] = document["services"]
    assert list(web) == config_field_names()
    assert "status" not in web and "next_check_at" not in web


def test_export_then_import_into_an_empty_database_reproduces_the_configuration(db, tmp_path):
    make = actions.service_create
    make(actor=None, id="web", name="Web", url="https://web.example.com/", tags=["a", "b"],
         headers={"X-Probe": "1"}, json_path="$.ok", json_expected=True, cron="*/15 * * * * *",
         interval_seconds=None, timeout_seconds=3.5, incident_severity="low")  # fmt: skip
    make(actor=None, id="db", name="Database port", kind="tcp", host="db.example.com", port=5432)
    make(actor=None, id="backup", name="Backup", kind="push", interval_seconds=3600)
    make(actor=None, id="dns", name="DNS", kind="dns", dns_name="example.com", enabled=False)
    exported = {s.id: service_config(s) for s in Service.objects.all()}
    path = tmp_path / "export.json"
    run("export_services", "--output", str(path))
    Service.objects.all().delete()

    out, _ = run("import_services", str(path))

    assert out.strip() == "created 4, updated 0, unchanged 0, invalid 0"
    assert {s.id: service_config(s) for s in Service.objects.all()} == exported


def test_importing_an_export_over_the_same_services_changes_nothing(db, tmp_path):
    actions.service_create(actor=None, id="web", name="Web", url="https://web.example.com/")
    path = tmp_path / "export.json"
    run("export_services", "--output", str(path))

    out, _ = run("import_services", str(path))

    assert out.strip() == "created 0, updated 0, unchanged 1, invalid 0"


def test_an_unknown_field_in_the_own_format_is_an_error(db, tmp_path):
    entry = {"id": "web", "name": "Web", "url": "https://web.example.com/", "colour": "red"}

    err = failing_import(tmp_path, {"format": FORMAT, "services": [entry]})

    assert "entry 1 (web): field colour: unknown field" in err


def test_a_wrongly_typed_value_is_an_error_not_a_crash(db, tmp_path):
    entry = {"id": "web", "name": "Web", "url": "https://web.example.com/", "port": "eighty"}

    err = failing_import(tmp_path, {"format": FORMAT, "services": [entry]})

    assert "entry 1 (web): field port: " in err


def test_nan_or_infinity_is_an_error_naming_the_entry_not_a_crash(db, tmp_path):
    path = tmp_path / "services.json"
    path.write_text(
        '[{"id": "ok", "name": "Ok", "url": "https://ok.example.com/", "interval": 60},'
        ' {"id": "n1", "name": "N", "url": "https://n.example.com/", "interval": 60,'
        ' "timeout": NaN},'
        ' {"id": "n2", "name": "N", "url": "https://n.example.com/", "interval": 60,'
        ' "healthCheck": {"maxResponseTime": -Infinity}}]'
    )
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_services", str(path), stdout=io.StringIO(), stderr=err)

    assert "entry 2 (n1): field timeout: NaN is not a number" in err.getvalue()
    assert "entry 3 (n2): field healthCheck.maxResponseTime: -Infinity" in err.getvalue()
    assert not Service.objects.exists()


def test_an_overflowing_number_is_refused_by_validation(db, tmp_path):
    # 1e999 is valid JSON that Python reads as inf, past parse_constant.
    entry = {"id": "web", "name": "Web", "url": "https://web.example.com/", "timeout_seconds": 1.5}
    path = tmp_path / "services.json"
    path.write_text(json.dumps({"format": FORMAT, "services": [entry]}).replace("1.5", "1e999"))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_services", str(path), stdout=io.StringIO(), stderr=err)

    assert "entry 1 (web): field timeout_seconds: inf is not a finite number" in err.getvalue()


# --- progress ---------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_off_a_terminal_prints_one_count_line():
    stream = io.StringIO()
    with Progress(3, label="importing", unit="services", stream=stream) as progress:
        for _ in range(3):
            progress.advance()

    assert stream.getvalue().startswith("importing 3/3 services in ")
    assert stream.getvalue().count("\n") == 1
    assert "\r" not in stream.getvalue()


def test_progress_on_a_terminal_redraws_a_bar_in_place():
    stream = Terminal()
    with Progress(2, label="backfilling", unit="days", stream=stream) as progress:
        progress.advance(2)

    drawn = stream.getvalue()
    assert drawn.startswith("\rbackfilling [")
    assert "2/2 days" in drawn and "/s" in drawn
    assert drawn.endswith("\n")
