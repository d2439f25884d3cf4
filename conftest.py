"""Fixtures shared by every app's tests: users of each role and API clients acting as them."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from accounts.actions import user_create
from accounts.choices import Role
from noc.cachekeys import delete_prefixed

# Fixtures of the apps, shared because other apps' tests build on them.
pytest_plugins = [
    "services.tests.fixtures",
    "incidents.tests.fixtures",
    "observability.tests.fixtures",
    "collectors.tests.fixtures",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_configure(config):
    """Cache keys of this run get a prefix of their own: the suite may run against a Redis that
    others use (CI's second pass uses the machine's), so it deletes only what it wrote."""
    from django.conf import settings

    cache = settings.CACHES["default"]
    cache["KEY_PREFIX"] = f"{cache.get('KEY_PREFIX') or 'noc'}-test-{os.getpid()}"


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start each test with none of this run's cache entries (axes, rate limits); never
    cache.clear(), which would empty a Redis database others may use."""
    delete_prefixed()


@pytest.fixture(autouse=True, scope="session")
def _leave_no_cache_keys():
    yield
    delete_prefixed()


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10_000))

    def make(role: str = Role.VIEWER, **extra):
        n = next(counter)
        username = extra.pop("username", f"{role}-{n}")
        return user_create(
            actor=None,
            username=username,
            email=extra.pop("email", f"{username}@example.test"),
            role=role,
            password=extra.pop("password", "correct horse battery staple"),
            **extra,
        )

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.ADMIN, username="alice")


@pytest.fixture
def operator_user(make_user):
    return make_user(Role.OPERATOR, username="oscar")


@pytest.fixture
def viewer_user(make_user):
    return make_user(Role.VIEWER, username="vera")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_as(make_user):
    """client_as(role) -> an APIClient logged in as a fresh user of that role."""

    def login(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            client.force_authenticate(make_user(role))
        return client

    return login
