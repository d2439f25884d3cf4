"""The status page as the admin configures it (title, logo, colour, which services, groups,
response times, maintenance announcements, on/off), the public updates it shows, its JSON feed,
and the admin pages that edit it (admins only, audited)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from incidents import actions as incident_actions
from incidents.choices import IncidentSource
from services.models import MaintenanceWindow
from web import actions
from web.models import StatusGroup, StatusPage
from web.tests.forms import submit
from web.tests.helpers import ensure_rollup_partitions, insert_rollup, set_status


@pytest.fixture(autouse=True)
def _private_cache(private_cache):
    """The page and its feed are cached: a cache of this process only, empty for each test."""


def page(client) -> str:
    response = client.get("/status/")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def feed(client) -> dict:
    response = client.get("/status/feed.json")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/feed+json"
    assert response["Cache-Control"] == "public, max-age=30"
    return json.loads(response.content)


def group(name: str, position: int, *services) -> StatusGroup:
    return actions.status_group_save(
        actor=None, group=StatusGroup(name=name, position=position), services=services
    )


# --- settings -----------------------------------------------------------------------------------


def test_title_introduction_logo_and_colour(client, make_service):
    make_service(name="Site")
    actions.status_page_update(
        actor=None, title="Acme status", introduction="Our services <b>live</b>.",
        logo_url="/static/web/favicon.svg", accent_color="#123abc",
    )  # fmt: skip
    html = page(client)
    assert "<title>Acme status</title>" in html
    assert '<img class="logo" src="/static/web/favicon.svg" alt="">Acme status' in html
    assert "Our services &lt;b&gt;live&lt;/b&gt;." in html
    assert "header.top { background: #123abc; }" in html


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("accent_color", "red; } body { display: none"),
        ("logo_url", "javascript:alert(1)"),
        ("logo_url", "//evil.example/logo.png"),
        ("announce_maintenance_days", 400),
    ],
)
def test_unsafe_or_bad_settings_are_refused(db, field, value):
    with pytest.raises(ValidationError) as refused:
        actions.status_page_update(actor=None, **{field: value})
    assert field in refused.value.message_dict
    assert not StatusPage.objects.exists()


def test_switched_off_the_page_its_feed_and_badges_are_404(client, make_service):
    service = make_service(name="Site")
    actions.status_page_update(actor=None, enabled=False)
    assert client.get("/status/").status_code == 404
    assert client.get("/status/feed.json").status_code == 404
    assert client.get(f"/status/badge/{service.pk}.svg").status_code == 404


def test_groups_arrange_the_services_and_the_rest_comes_last(client, make_service):
    api, web_, mail = (make_service(name=n) for n in ("API", "Website", "Mail"))
    make_service(name="Batch", tags=["internal"])
    group("Customer facing", 1, web_, api)
    group("Messaging", 2, mail)
    html = page(client)
    headings = [h for h in ("Customer facing", "Messaging", "Other services") if h in html]
    assert headings == ["Customer facing", "Messaging"]
    assert html.index("API") < html.index("Website") < html.index("Messaging") < html.index("Mail")
    make_service(name="Search")
    cache.clear()
    html = page(client)
    assert html.index("Messaging") < html.index("Other services") < html.index("Search")
    assert "Batch" not in html


def test_a_page_of_groups_only_shows_just_what_its_groups_hold(client, make_service):
    shown = make_service(name="Website")
    chosen_internal = make_service(name="Status API", tags=["internal"])
    make_service(name="Search")  # public by tag, in no group
    group("Everything we promise", 1, shown, chosen_internal)
    actions.status_page_update(actor=None, services_shown="groups")
    html = page(client)
    assert "Website" in html and "Status API" in html  # the admin chose it explicitly
    assert "Search" not in html
    assert "Other services" not in html


def test_response_times_are_shown_when_asked(client, make_service, native_rollups):
    service = make_service(name="Site")
    now = timezone.now()
    ensure_rollup_partitions(now - timedelta(days=1), now + timedelta(days=1))
    insert_rollup(
        "services_checkrollup_hourly", service.pk,
        now.replace(minute=0, second=0, microsecond=0), up=60, rt_ms=123.0,
    )  # fmt: skip
    assert "123 ms" not in page(client)
    actions.status_page_update(actor=None, show_response_times=True)
    cache.clear()
    assert "123 ms" in page(client)


# --- public words -------------------------------------------------------------------------------


def test_public_updates_and_title_are_shown_never_the_internal_title(
    client, make_service, operator_user
):
    service = make_service(name="Checkout")
    incident = incident_actions.incident_open(
        service=service, source=IncidentSource.SLO, impact_started_at=timezone.now(),
        title="SLO checkout-p95 burning (db-7)",
    )  # fmt: skip
    incident_actions.incident_publish(
        incident=incident, actor=operator_user, phase="investigating",
        message="Some payments are slow.", public_title="Slow payments",
    )  # fmt: skip
    incident_actions.incident_publish(
        incident=incident, actor=operator_user, phase="identified",
        message="A database is overloaded; we are moving traffic.",
    )  # fmt: skip
    html = page(client)
    active = html[html.index('id="active-incidents"') :]
    assert 'class="incident-title">Slow payments<' in active
    assert 'badge-identified">Identified<' in active
    assert active.index("A database is overloaded") < active.index("Some payments are slow.")
    assert "checkout-p95" not in html and "db-7" not in html


# --- maintenance ----------------------------------------------------------------------------------


def window(*services, **fields) -> MaintenanceWindow:
    fields.setdefault("name", "Swap the primary of db-7")
    fields.setdefault("description", "ticket OPS-4711")
    made = MaintenanceWindow.objects.create(**fields)
    made.services.set(services)
    return made


def test_maintenance_is_announced_ahead_in_public_words(client, make_service):
    site, batch = make_service(name="Site"), make_service(name="Batch", tags=["internal"])
    now = timezone.now()
    soon = window(
        site, batch, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=1)
    )
    window(site, starts_at=now + timedelta(days=30), ends_at=now + timedelta(days=30, hours=1))
    window(batch, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1))
    nightly = window(site, cron="0 0 3 * * *", duration_minutes=30)
    html = page(client)
    section = html[
        html.index('id="maintenance"') : html.index("</section>", html.index('id="maintenance"'))
    ]
    assert f'data-maintenance="{soon.pk}"><td>Site</td>' in section  # Batch is not public
    assert f'data-maintenance="{nightly.pk}"' in section  # its next occurrence
    assert section.count("<tr data-maintenance=") == 2  # not in 30 days, not internal-only
    assert "db-7" not in html and "OPS-4711" not in html


def test_maintenance_in_progress_says_so_and_none_is_announced_at_zero_days(client, make_service):
    site = make_service(name="Site")
    now = timezone.now()
    window(site, starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=55))
    assert "in progress" in page(client)
    actions.status_page_update(actor=None, announce_maintenance_days=0)
    cache.clear()
    assert 'id="maintenance"' not in page(client)


# --- feed -----------------------------------------------------------------------------------------


def test_the_feed_carries_incidents_updates_and_maintenance_in_public_words(
    client, make_service, operator_user, settings
):
    settings.NOC_PUBLIC_URL = "https://status.example.com"
    site = make_service(name="Site")
    set_status(site, "down")
    incident = incident_actions.incident_open(
        service=site, source=IncidentSource.CHECK, impact_started_at=timezone.now(),
        title="nginx on web-3 returns 502 (OPS-99)",
    )  # fmt: skip
    incident_actions.incident_publish(
        incident=incident, actor=operator_user, phase="investigating", message="Looking into it."
    )
    window(
        site,
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=1, hours=1),
    )
    data = feed(client)
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert data["home_page_url"] == "https://status.example.com/status/"
    assert data["feed_url"] == "https://status.example.com/status/feed.json"
    assert data["_noc"]["status"] == "major"
    assert data["_noc"]["services"] == [{"name": "Site", "status": "down", "uptime_90d": None}]
    by_id = {item["id"]: item for item in data["items"]}
    item = by_id[f"incident-{incident.pk}"]
    assert item["title"] == "Site is unavailable (New)"
    assert "Looking into it." in item["content_text"]
    assert item["url"] == f"https://status.example.com/status/#incident-{incident.pk}"
    (maintenance,) = [i for i in data["items"] if i["id"].startswith("maintenance-")]
    assert maintenance["title"] == "Scheduled maintenance: Site"
    text = json.dumps(data)
    assert "web-3" not in text and "OPS-99" not in text and "db-7" not in text


# --- the admin ------------------------------------------------------------------------------------


def test_an_admin_edits_the_page_in_the_admin_and_it_is_audited(console_as, make_service):
    make_service(name="Site")
    admin = console_as(Role.ADMIN)
    assert admin.get("/admin/web/statuspage/").status_code == 302  # straight to the one page
    change = "/admin/web/statuspage/1/change/"
    form = {
        "enabled": "on", "title": "Acme status", "introduction": "", "logo_url": "",
        "accent_color": "#204060", "services_shown": "not_internal",
        "announce_maintenance_days": "7",
    }  # fmt: skip
    response = submit(admin, change, change, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert StatusPage.current().title == "Acme status"
    assert AuditEvent.objects.filter(target_type__icontains="statuspage").exists()


def test_other_roles_read_the_settings_but_cannot_change_them(console_as, db):
    for role in (Role.VIEWER, Role.OPERATOR):
        client = console_as(role)
        change = "/admin/web/statuspage/1/change/"
        response = submit(client, "/", change, {"title": "Hacked", "accent_color": "#000000"})
        assert response.status_code == 403
    assert not StatusPage.objects.exists()


def test_groups_are_edited_by_admins_with_an_audit_row(console_as, make_service):
    site = make_service(name="Site")
    admin = console_as(Role.ADMIN)
    response = submit(
        admin, "/admin/web/statusgroup/add/", "/admin/web/statusgroup/add/",
        {"name": "Web", "position": "1", "services": [site.pk]},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    created = StatusGroup.objects.get(name="Web")
    assert list(created.services.all()) == [site]
    assert AuditEvent.objects.filter(target_type__icontains="statusgroup", action="create").exists()
