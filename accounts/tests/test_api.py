from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.actions import api_key_create
from accounts.audit import MASK
from accounts.models import ApiKey, AuditEvent, User

pytestmark = pytest.mark.django_db


def test_me_returns_the_signed_in_user(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    body = api_client.get("/api/me/").json()
    assert body["username"] == "oscar"
    assert body["role"] == "operator"


def test_admin_creates_a_user_in_the_role_group_and_it_is_audited(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.post(
        "/api/users/",
        {
            "username": "bob",
            "email": "bob@example.test",
            "role": "operator",
            "password": "s3cure-enough-pw",
        },
    )
    assert response.status_code == 201, response.content
    assert "password" not in response.json()
    bob = User.objects.get(username="bob")
    assert bob.check_password("s3cure-enough-pw")
    assert list(bob.groups.values_list("name", flat=True)) == ["operator"]
    event = AuditEvent.objects.get(target_type="accounts.user", target_id=str(bob.pk))
    assert event.action == "create"
    assert event.actor == admin_user
    assert event.changes["password"] == [None, "********"]
    assert event.request_id


def test_an_unknown_role_is_refused_naming_the_field(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.post(
        "/api/users/", {"username": "x", "email": "x@example.test", "role": "superhero"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "role" in body["errors"]
    assert "superhero" in body["message"]
    assert not User.objects.filter(username="x").exists()


def test_a_duplicate_email_is_refused(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.post(
        "/api/users/", {"username": "other", "email": admin_user.email, "role": "viewer"}
    )
    assert response.status_code == 400
    assert "email" in response.json()["errors"]
    assert User.objects.filter(email=admin_user.email).count() == 1


def test_a_weak_password_is_refused_and_nothing_written(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    count = AuditEvent.objects.count()
    response = api_client.post(
        "/api/users/",
        {"username": "weak", "email": "w@example.test", "role": "viewer", "password": "123"},
    )
    assert response.status_code == 400
    assert "password" in response.json()["errors"]
    assert not User.objects.filter(username="weak").exists()
    assert AuditEvent.objects.count() == count


def test_changing_a_role_moves_the_group_and_audits_before_and_after(
    api_client, admin_user, viewer_user
):
    api_client.force_authenticate(admin_user)
    response = api_client.patch(f"/api/users/{viewer_user.pk}/", {"role": "operator"})
    assert response.status_code == 200, response.content
    viewer_user.refresh_from_db()
    assert list(viewer_user.groups.values_list("name", flat=True)) == ["operator"]
    event = AuditEvent.objects.filter(action="update", target_id=str(viewer_user.pk)).get()
    assert event.changes == {"role": ["viewer", "operator"]}


def test_changing_a_password_through_the_api_is_audited_masked(api_client, admin_user, viewer_user):
    api_client.force_authenticate(admin_user)
    new = "a much better passphrase 123"
    response = api_client.patch(f"/api/users/{viewer_user.pk}/", {"password": new})
    assert response.status_code == 200, response.content
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(new)
    event = AuditEvent.objects.get(action="update", target_id=str(viewer_user.pk))
    assert event.changes == {"password": [MASK, MASK]}
    assert event.actor == admin_user


def test_users_cannot_be_deleted_through_the_api(api_client, admin_user, viewer_user):
    api_client.force_authenticate(admin_user)
    assert api_client.delete(f"/api/users/{viewer_user.pk}/").status_code == 405


# --- API keys ---------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_authenticates_as_its_user(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    created = api_client.post("/api/api-keys/", {"name": "ci", "expires_in_days": 30}).json()
    key = created["key"]
    assert key.startswith(f"noc_{created['prefix']}_")
    listed = api_client.get("/api/api-keys/").json()["results"]
    assert "key" not in listed[0]
    stored = ApiKey.objects.get(prefix=created["prefix"])
    assert key not in (stored.hashed_key, stored.prefix)

    machine = type(api_client)()
    response = machine.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response.json()["username"] == "oscar"
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_an_expired_key_is_refused_with_a_clear_message(api_client, viewer_user):
    api_key, key = api_key_create(actor=None, user=viewer_user, name="old", expires_in_days=1)
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 401
    assert response.json()["message"] == "This API key has expired."


def test_a_revoked_key_is_refused(api_client, viewer_user):
    api_key, key = api_key_create(actor=None, user=viewer_user, name="gone")
    api_client.force_authenticate(viewer_user)
    assert api_client.delete(f"/api/api-keys/{api_key.pk}/").status_code == 204
    api_client.force_authenticate(None)
    response = api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_a_key_of_a_deactivated_user_is_refused(api_client, viewer_user):
    _, key = api_key_create(actor=None, user=viewer_user, name="k")
    User.objects.filter(pk=viewer_user.pk).update(is_active=False)
    response = api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer", "Malformed Authorization header"),
        ("Bearer a b", "Malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "scheme 'Basic' is not supported"),
        ("Bearer not-a-key", "not a NOC API key"),
        ("Bearer noc_deadbeef_nope", "Unknown API key"),
        ("Nonsense", "Malformed Authorization header"),
        ("   ", "Malformed Authorization header"),
        ("\t", "Malformed Authorization header"),
    ],
)
def test_a_malformed_authorization_header_gets_401_naming_the_problem(api_client, header, message):
    response = api_client.get("/api/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert message in response.json()["message"]


def test_viewers_see_only_their_own_keys_and_admins_see_all(api_client, viewer_user, admin_user):
    api_key_create(actor=None, user=viewer_user, name="mine")
    api_key_create(actor=None, user=admin_user, name="admins")
    api_client.force_authenticate(viewer_user)
    assert [k["name"] for k in api_client.get("/api/api-keys/").json()["results"]] == ["mine"]
    api_client.force_authenticate(admin_user)
    assert len(api_client.get("/api/api-keys/").json()["results"]) == 2


def test_an_api_key_cannot_create_another_api_key(api_client, admin_user):
    # A key minted by a key would outlive the expiry or revocation of the key that made it.
    _, key = api_key_create(actor=None, user=admin_user, name="short", expires_in_days=1)
    response = api_client.post(
        "/api/api-keys/", {"name": "forever"}, HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 403, response.content
    assert "signed-in person" in response.json()["message"]
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["short"]
    assert AuditEvent.objects.filter(target_type="accounts.apikey").count() == 1
    # The key still authenticates for everything else.
    assert api_client.get("/api/api-keys/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_create_api_key_command_prints_a_working_key(api_client, operator_user):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_key", "oscar", "--name", "deploy", "--expires", "7", stdout=out)
    key = out.getvalue().strip()
    assert api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert ApiKey.objects.get(name="deploy").expires_at is not None


def test_create_api_key_for_an_unknown_user_fails_clearly(db):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_key", "ghost")


# --- audit events -----------------------------------------------------------------------------


def test_audit_events_are_listed_for_admins_with_filters(api_client, admin_user, viewer_user):
    api_client.force_authenticate(admin_user)
    api_client.patch(f"/api/users/{viewer_user.pk}/", {"first_name": "Vera"})
    body = api_client.get("/api/audit-events/", {"action": "update"}).json()
    assert body["count"] == 1
    assert body["results"][0]["changes"] == {"first_name": ["", "Vera"]}
    assert body["results"][0]["actor_label"] == "alice"


def test_an_unknown_filter_value_is_a_400_not_a_500(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.get("/api/audit-events/", {"action": "explode", "since": "yesterday"})
    assert response.status_code == 400
    assert {"action", "since"} <= set(response.json()["errors"])
