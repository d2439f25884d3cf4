"""The slos admin: the list with its budget bar and risk badge, the change page with recent
history, saves and deletes through the actions with one audit row, read-only alerts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from slos import actions
from slos.models import SLO, SLOAlert, SLOStatus

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/slos/slo/"
ALERTS = "/admin/slos/sloalert/"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return login(admin_user)


@pytest.fixture
def slo(make_service) -> SLO:
    return actions.slo_create(
        actor=None, id="web-availability", name="Web availability", service=make_service(id="web"),
        sli_type="availability", target=Decimal("99.9"),
    )  # fmt: skip


def slo_form(**overrides: str) -> dict[str, str]:
    """The add/change form as a browser posts it (unchecked boxes are absent)."""
    data = {
        "id": "web-availability", "name": "Web availability", "description": "", "owner": "",
        "service": "web", "enabled": "on", "sli_type": "availability",
        "latency_threshold_ms": "", "target": "99.9", "window": "30d", "time_zone": "UTC",
        "budgeting_method": "occurrences",
    }  # fmt: skip
    data.update(overrides)
    return data


def events(slo_id: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(target_type="slos.slo", target_id=slo_id).order_by("time")
    )


# --- pages --------------------------------------------------------------------------------------


def test_the_list_shows_budget_bar_risk_and_filters(admin_client_, slo, make_service):
    SLO.objects.filter(pk=slo.pk).update(
        current_value=99.95, compliant=True, budget_remaining_percent=20.0, burn_rate=6.5,
        violation_risk="high",
    )  # fmt: skip
    actions.slo_create(
        actor=None, id="db-availability", name="DB", service=make_service(id="db"),
        sli_type="availability", target=Decimal("99"),
    )  # fmt: skip
    page = admin_client_.get(CHANGELIST).content.decode()
    assert "width:20px" in page and "#cf222e" in page  # a red bar a fifth full
    assert "20.0%" in page
    assert ">high</span>" in page
    assert "99.950 %" in page
    assert "6.50×" in page

    filtered = admin_client_.get(CHANGELIST, {"violation_risk__exact": "high"}).content.decode()
    assert f"{CHANGELIST}web-availability/change/" in filtered
    assert f"{CHANGELIST}db-availability/change/" not in filtered
    by_service = admin_client_.get(CHANGELIST, {"service__id__exact": "db"}).content.decode()
    assert f"{CHANGELIST}db-availability/change/" in by_service
    assert f"{CHANGELIST}web-availability/change/" not in by_service
    for params in ({"compliant__exact": "1"}, {"sli_type__exact": "latency"}, {"window": "7d"}):
        assert admin_client_.get(CHANGELIST, params).status_code == 200


def test_the_change_page_shows_the_recent_history(admin_client_, slo):
    now = timezone.now().replace(second=0, microsecond=0)
    actions.slos_evaluate(now=now - timedelta(minutes=1))
    actions.slos_evaluate(now=now)
    assert SLOStatus.objects.filter(slo_id=slo.pk).count() == 2
    page = admin_client_.get(f"{CHANGELIST}{slo.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<th>budget left (min)</th>" in html
    assert html.count("<tr><td>") == 2
    assert f"{now:%Y-%m-%d %H:%M}" in html


def test_a_change_page_without_history_says_so(admin_client_, slo):
    assert (
        "Not evaluated yet." in admin_client_.get(f"{CHANGELIST}{slo.pk}/change/").content.decode()
    )


def test_the_add_page_renders(admin_client_):
    assert admin_client_.get(f"{CHANGELIST}add/").status_code == 200


# --- saves --------------------------------------------------------------------------------------


def test_adding_an_slo_goes_through_the_action_and_audits_once(admin_client_, make_service):
    make_service(id="web")
    response = admin_client_.post(f"{CHANGELIST}add/", slo_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert SLO.objects.get(pk="web-availability").target == Decimal("99.9")
    assert [e.action for e in events("web-availability")] == ["create"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target": "100"}, "target"),
        ({"sli_type": "latency"}, "latency_threshold_ms"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),  # a directory of the zone database
        ({"id": "summary"}, "id"),  # /api/slos/summary/ is not an SLO
        ({"id": "report"}, "id"),
    ],
)
def test_an_invalid_slo_is_refused_on_the_form(admin_client_, make_service, overrides, field):
    make_service(id="web")
    response = admin_client_.post(f"{CHANGELIST}add/", slo_form(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not SLO.objects.exists()
    assert not events("web-availability")


def test_changing_an_slo_audits_once_with_the_changes(admin_client_, slo):
    response = admin_client_.post(
        f"{CHANGELIST}{slo.pk}/change/", slo_form(target="99.5", window="7d")
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    [update] = [e for e in events(slo.pk) if e.action == "update"]
    assert update.changes["window"] == ["30d", "7d"]
    assert update.actor.username == "alice"
    assert SLO.objects.get(pk=slo.pk).target == Decimal("99.5")


def test_deleting_an_slo_removes_its_history_and_audits_once(admin_client_, slo):
    actions.slos_evaluate(now=timezone.now())
    response = admin_client_.post(f"{CHANGELIST}{slo.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not SLO.objects.exists()
    assert not SLOStatus.objects.filter(slo_id=slo.pk).exists()
    assert [e.action for e in events(slo.pk)] == ["create", "delete"]


def test_bulk_delete_goes_through_the_action(admin_client_, slo):
    response = admin_client_.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [slo.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not SLO.objects.exists()
    assert [e.action for e in events(slo.pk)] == ["create", "delete"]


# --- alerts -------------------------------------------------------------------------------------


def test_alerts_are_listed_read_only(admin_client_, slo):
    alert = SLOAlert.objects.create(
        slo=slo, rule="page-1h-5m", severity="page", threshold=14.4, long_burn=20.0,
        short_burn=30.0, fired_at=timezone.now(),
    )  # fmt: skip
    page = admin_client_.get(ALERTS)
    assert page.status_code == 200
    assert "page-1h-5m" in page.content.decode() and ">firing</span>" in page.content.decode()
    assert admin_client_.get(f"{ALERTS}add/").status_code == 403
    detail = admin_client_.get(f"{ALERTS}{alert.pk}/change/")
    assert detail.status_code == 200  # the view page
    assert 'name="_save"' not in detail.content.decode()


def test_an_operator_sees_slos_but_cannot_change_them(operator_user, slo):
    client = login(operator_user)
    assert client.get(CHANGELIST).status_code == 200
    page = client.get(f"{CHANGELIST}{slo.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_status_history_is_not_registered(admin_client_):
    assert admin_client_.get("/admin/slos/slostatus/").status_code == 404


def test_a_metric_slo_is_made_on_the_form_and_its_selectors_checked(admin_client_, application):
    from observability.actions import metric_points_ingest
    from observability.points import MetricPoint

    metric_points_ingest(
        application=application,
        points=[MetricPoint.at(n, 1, kind="counter") for n in ("requests_total", "ok_total")],
    )
    form = slo_form(
        id="shop-success", service="", sli_type="ratio", target="99",
        good_metric='{"application": "shop", "name": "good_total"}',
        total_metric='{"application": "shop", "name": "requests_total"}',
    )  # fmt: skip
    response = admin_client_.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 200
    assert "No series good_total" in response.context["adminform"].form.errors["good_metric"][0]
    form["good_metric"] = '{"application": "shop", "name": "ok_total"}'
    response = admin_client_.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert SLO.objects.get(pk="shop-success").service is None
