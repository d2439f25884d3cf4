from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def attempt(client: Client, password: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "vera", "password": password},
        REMOTE_ADDR="10.0.0.9",
    )


def test_repeated_failures_lock_the_login_with_a_clear_message(settings, viewer_user):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        assert attempt(client, "wrong").status_code == 200  # the form again, with its error
    response = attempt(client, "wrong")
    assert response.status_code == 429
    assert b"Too many failed login attempts" in response.content
    # Even the right password is refused while locked.
    assert attempt(client, "correct horse battery staple").status_code == 429


def test_the_api_gets_the_lockout_as_json(settings, viewer_user):
    settings.AXES_FAILURE_LIMIT = 1
    client = Client()
    response = client.post(
        "/api-auth/login/", {"username": "vera", "password": "nope"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"


def test_a_successful_login_before_the_limit_resets_the_count(settings, viewer_user):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    attempt(client, "wrong")
    attempt(client, "wrong")
    assert attempt(client, "correct horse battery staple").status_code == 302
    Client().logout()
    assert attempt(Client(), "wrong").status_code == 200
