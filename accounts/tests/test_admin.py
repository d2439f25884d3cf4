from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_saving_a_user_in_the_admin_writes_an_audit_event(admin_user, viewer_user):
    client = login(admin_user)
    response = client.post(
        f"/admin/accounts/user/{viewer_user.pk}/change/",
        {
            "username": viewer_user.username,
            "email": viewer_user.email,
            "first_name": "Vera",
            "last_name": "",
            "role": "operator",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="update", target_id=str(viewer_user.pk))
    assert event.changes["role"] == ["viewer", "operator"]
    assert event.actor == admin_user
    viewer_user.refresh_from_db()
    assert list(viewer_user.groups.values_list("name", flat=True)) == ["operator"]


def test_deleting_in_the_admin_is_audited(admin_user, viewer_user):
    client = login(admin_user)
    response = client.post(f"/admin/accounts/user/{viewer_user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=viewer_user.pk).exists()
    assert AuditEvent.objects.filter(action="delete", target_id=str(viewer_user.pk)).exists()


def test_a_viewer_can_read_but_not_change_in_the_admin(viewer_user, operator_user):
    client = login(viewer_user)
    assert client.get("/admin/accounts/user/").status_code == 200
    page = client.get(f"/admin/accounts/user/{operator_user.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = client.post(
        f"/admin/accounts/user/{operator_user.pk}/change/",
        {"username": "hijack", "email": operator_user.email, "role": "admin"},
    )
    assert response.status_code == 403
    operator_user.refresh_from_db()
    assert operator_user.role == "operator"


def test_audit_events_are_read_only_in_the_admin(admin_user, viewer_user):
    client = login(admin_user)
    event = AuditEvent.objects.first()
    assert client.get("/admin/accounts/auditevent/").status_code == 200
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
