"""The services admin: lists and pages render, saves go through the actions and audit once,
bulk actions enable, disable and check now, maintenance windows are validated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from services.models import CheckResult, MaintenanceWindow, Service

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/services/service/"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return login(admin_user)


def service_form(target: str, **overrides: str) -> dict[str, str]:
    """The add/change form as a browser posts it (unchecked boxes are absent)."""
    data = {
        "id": "web", "name": "Web", "description": "", "tags": "prod,edge", "enabled": "on",
        "kind": "http", "url": f"{target}/ok", "method": "GET", "headers": "{}", "body": "",
        "follow_redirects": "on", "verify_tls": "on", "host": "", "port": "", "dns_name": "",
        "dns_record_type": "A", "dns_expected": "", "dns_server": "", "timeout_seconds": "5",
        "retries": "0", "allow_private": "true", "interval_seconds": "60", "cron": "",
        "grace_seconds": "60", "expected_status": "200", "max_response_time_ms": "",
        "body_contains": "", "body_not_contains": "", "json_path": "", "json_expected": "",
        "cert_min_days": "", "failure_threshold": "2", "success_threshold": "1",
        "incident_severity": "",
    }  # fmt: skip
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def events(target_id: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_id=target_id).order_by("time"))


def run_action(client: Client, action: str, *ids: str):
    return client.post(CHANGELIST, {"action": action, "_selected_action": list(ids)}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- pages --------------------------------------------------------------------------------------


def test_the_list_shows_state_and_filters(admin_client_, make_service):
    make_service(id="api", tags=["prod", "edge"])
    make_service(id="db", kind="tcp", host="127.0.0.1", port=5432)
    Service.objects.filter(id="db").update(status="down", last_response_time_ms=42.4)

    page = admin_client_.get(CHANGELIST).content.decode()
    assert "prod, edge" in page
    assert "&#9679; down" in page and "#cf222e" in page
    assert "42 ms" in page

    filtered = admin_client_.get(CHANGELIST, {"status__exact": "down"}).content.decode()
    assert "/admin/services/service/db/change/" in filtered
    assert "/admin/services/service/api/change/" not in filtered
    searched = admin_client_.get(CHANGELIST, {"q": "api"}).content.decode()
    assert "/admin/services/service/api/change/" in searched
    assert "/admin/services/service/db/change/" not in searched


def test_the_change_page_shows_recent_results(admin_client_, make_service):
    make_service(id="web")
    now = timezone.now()
    CheckResult.objects.bulk_create(
        [
            CheckResult(service_id="web", time=now, status="down", error="expected status 200"),
            CheckResult(
                service_id="web",
                time=now - timedelta(minutes=1),
                status="up",
                response_time_ms=12.3,
                status_code=200,
            ),
        ]
    )
    page = admin_client_.get(f"{CHANGELIST}web/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<th>response</th>" in html
    assert "expected status 200" in html
    assert "12 ms" in html


def test_the_add_page_renders(admin_client_):
    assert admin_client_.get(f"{CHANGELIST}add/").status_code == 200


# --- saves --------------------------------------------------------------------------------------


def test_adding_a_service_goes_through_the_action_and_audits_once(admin_client_, target):
    response = admin_client_.post(f"{CHANGELIST}add/", service_form(target))
    assert response.status_code == 302, response.context["adminform"].form.errors
    service = Service.objects.get(id="web")
    assert service.tags == ["prod", "edge"]
    assert service.next_check_at is not None  # scheduled by service_create
    assert [e.action for e in events("web")] == ["create"]


def test_an_invalid_service_is_refused_on_the_form(admin_client_, target):
    response = admin_client_.post(
        f"{CHANGELIST}add/", service_form(target, url="ftp://files.example.com/")
    )
    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    assert not Service.objects.exists()
    assert not events("web")


def test_changing_a_service_audits_once_with_the_changes(admin_client_, make_service, target):
    make_service(id="web", name="Web", tags=["prod", "edge"], timeout_seconds=5, allow_private=True)
    response = admin_client_.post(
        f"{CHANGELIST}web/change/", service_form(target, name="Website", interval_seconds="120")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    [update] = [e for e in events("web") if e.action == "update"]
    assert update.changes["name"] == ["Web", "Website"]
    assert update.changes["interval_seconds"] == [60, 120]
    assert update.actor.username == "alice"


def test_deleting_a_service_removes_its_results_and_audits_once(admin_client_, make_service):
    make_service(id="web")
    CheckResult.objects.create(service_id="web", time=timezone.now(), status="up")
    response = admin_client_.post(f"{CHANGELIST}web/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Service.objects.filter(id="web").exists()
    assert not CheckResult.objects.filter(service_id="web").exists()
    assert [e.action for e in events("web")] == ["create", "delete"]


# --- bulk actions -------------------------------------------------------------------------------


def test_disable_and_enable_actions_report_each_service(admin_client_, make_service):
    make_service(id="a")
    make_service(id="b", enabled=False)
    response = run_action(admin_client_, "disable_services", "a", "b")
    assert sorted(messages_of(response)) == ["a: disabled.", "b: already disabled."]
    assert not Service.objects.get(id="a").enabled
    response = run_action(admin_client_, "enable_services", "a", "b")
    assert sorted(messages_of(response)) == ["a: enabled.", "b: enabled."]
    assert Service.objects.filter(enabled=True).count() == 2


def test_an_operator_checks_services_now_from_the_list(operator_user, make_service):
    make_service(id="ok", allow_private=True)
    make_service("/down", id="broken", allow_private=True)
    make_service(id="beat", kind="push")
    response = run_action(login(operator_user), "check_services_now", "ok", "broken", "beat")
    found = sorted(messages_of(response))
    assert found[0] == "beat: a push service is checked by its pings."
    assert found[1].startswith("broken: down in ") and "503" in found[1]
    assert found[2].startswith("ok: up in ")
    assert set(CheckResult.objects.values_list("service_id", flat=True)) == {"ok", "broken"}
    assert AuditEvent.objects.filter(verb="check_now").count() == 2


def test_a_viewer_cannot_check_now_from_the_list(viewer_user, make_service):
    make_service(id="ok", allow_private=True)
    client = login(viewer_user)
    assert client.get(CHANGELIST).status_code == 200
    run_action(client, "check_services_now", "ok")
    assert not CheckResult.objects.exists()


def test_an_operator_cannot_disable_from_the_list(operator_user, make_service):
    make_service(id="ok")
    run_action(login(operator_user), "disable_services", "ok")
    assert Service.objects.get(id="ok").enabled


# --- maintenance windows ------------------------------------------------------------------------

WINDOWS = "/admin/services/maintenancewindow/"


def test_a_window_is_added_with_its_services_and_audited_once(admin_client_, make_service):
    make_service(id="web")
    make_service(id="db")
    response = admin_client_.post(
        f"{WINDOWS}add/",
        {
            "name": "nightly",
            "description": "",
            "services": ["web", "db"],
            "starts_at_0": "",
            "starts_at_1": "",
            "ends_at_0": "",
            "ends_at_1": "",
            "cron": "0 0 3 * * *",
            "duration_minutes": "30",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    window = MaintenanceWindow.objects.get(name="nightly")
    assert sorted(window.services.values_list("id", flat=True)) == ["db", "web"]
    assert [e.action for e in events(str(window.pk))] == ["create"]
    page = admin_client_.get(WINDOWS).content.decode()
    assert "db, web" in page


def test_a_window_ending_before_it_starts_is_refused(admin_client_, make_service):
    make_service(id="web")
    response = admin_client_.post(
        f"{WINDOWS}add/",
        {
            "name": "backwards",
            "services": ["web"],
            "starts_at_0": "2030-01-02",
            "starts_at_1": "10:00:00",
            "ends_at_0": "2030-01-01",
            "ends_at_1": "10:00:00",
            "cron": "",
            "duration_minutes": "",
        },
    )
    assert response.status_code == 200
    assert "ends_at" in response.context["adminform"].form.errors
    assert not MaintenanceWindow.objects.exists()


def test_the_window_pages_render(admin_client_):
    window = MaintenanceWindow.objects.create(name="w", cron="0 0 3 * * *", duration_minutes=5)
    assert admin_client_.get(f"{WINDOWS}add/").status_code == 200
    assert admin_client_.get(f"{WINDOWS}{window.pk}/change/").status_code == 200
