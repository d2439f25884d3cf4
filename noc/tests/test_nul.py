"""NUL characters, which PostgreSQL cannot store or compare, are refused at the boundary."""

from __future__ import annotations

import pytest

from noc.api.parsers import nul_path

pytestmark = pytest.mark.django_db


def test_a_nul_in_an_admin_search_is_a_400_not_a_database_error(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/services/service/", {"q": "a\x00"})
    assert response.status_code == 400
    assert response.content == b"NUL characters (%00) are not accepted in the URL."


def test_a_url_without_nul_passes(client):
    assert client.get("/health/live", {"q": "%2500 is not a NUL"}).status_code == 200


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"a": "ok", "b": {"c": ["x", "y\x00"]}}, "b.c[1]"),
        ({"k\x00": 1}, "k\x00"),
        (["\x00"], "[0]"),
        ({"a": 1.5, "b": None, "c": [True]}, None),
    ],
)
def test_the_path_of_the_first_nul_is_found(data, path):
    assert nul_path(data) == path
