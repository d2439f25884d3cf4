from __future__ import annotations

import pytest
from django.test import Client

from accounts.actions import api_key_create
from accounts.audit import MASK
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


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_users_and_audit_events_are_for_admins_only_in_the_admin(role, make_user, admin_user):
    # As the API (403 on /api/users/ and /api/audit-events/): every role is staff and holds
    # every view_* permission, so the admin itself must refuse.
    client = login(make_user(role))
    event = AuditEvent.objects.first()
    for url in [
        "/admin/accounts/user/",
        f"/admin/accounts/user/{admin_user.pk}/change/",
        f"/admin/accounts/user/{admin_user.pk}/history/",
        "/admin/accounts/auditevent/",
        f"/admin/accounts/auditevent/{event.pk}/change/",
    ]:
        assert client.get(url).status_code == 403, url
    index = client.get("/admin/").content
    assert b"/admin/accounts/user/" not in index
    assert b"/admin/accounts/auditevent/" not in index


def test_a_viewer_cannot_change_a_user_in_the_admin(viewer_user, operator_user):
    client = login(viewer_user)
    response = client.post(
        f"/admin/accounts/user/{operator_user.pk}/change/",
        {"username": "hijack", "email": operator_user.email, "role": "admin"},
    )
    assert response.status_code == 403
    operator_user.refresh_from_db()
    assert operator_user.role == "operator"


def test_admins_see_users_in_the_admin(admin_user, viewer_user):
    client = login(admin_user)
    assert viewer_user.email.encode() in client.get("/admin/accounts/user/").content
    assert client.get(f"/admin/accounts/user/{viewer_user.pk}/change/").status_code == 200


def test_in_the_admin_non_admins_see_only_their_own_api_keys(viewer_user, admin_user):
    mine, _ = api_key_create(actor=None, user=viewer_user, name="vera-key")
    theirs, _ = api_key_create(actor=None, user=admin_user, name="alice-key")
    client = login(viewer_user)
    listing = client.get("/admin/accounts/apikey/")
    assert listing.status_code == 200
    assert b"vera-key" in listing.content
    assert b"alice-key" not in listing.content
    assert client.get(f"/admin/accounts/apikey/{mine.pk}/change/").status_code == 200
    other = client.get(f"/admin/accounts/apikey/{theirs.pk}/change/")
    assert other.status_code != 200
    assert b"alice-key" not in other.content

    listing = login(admin_user).get("/admin/accounts/apikey/")
    assert b"vera-key" in listing.content
    assert b"alice-key" in listing.content


def test_changing_a_password_in_the_admin_is_audited_masked(admin_user, viewer_user):
    client = login(admin_user)
    new = "another long passphrase 456"
    response = client.post(
        f"/admin/accounts/user/{viewer_user.pk}/password/",
        {"password1": new, "password2": new, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(new)
    event = AuditEvent.objects.get(action="update", target_id=str(viewer_user.pk))
    assert event.changes == {"password": [MASK, MASK]}
    assert event.actor == admin_user
    assert new not in str(event.changes)


def test_an_invalid_password_form_in_the_admin_audits_nothing(admin_user, viewer_user):
    client = login(admin_user)
    response = client.post(
        f"/admin/accounts/user/{viewer_user.pk}/password/",
        {"password1": "one long passphrase", "password2": "another", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="update", target_id=str(viewer_user.pk)).exists()


def test_audit_events_are_read_only_in_the_admin(admin_user, viewer_user):
    client = login(admin_user)
    event = AuditEvent.objects.first()
    assert client.get("/admin/accounts/auditevent/").status_code == 200
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert (
        client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
