"""Fixtures of the console's tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from web.tests.helpers import native_rollups  # noqa: F401 - a fixture


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


@pytest.fixture
def console_as(make_user):
    """console_as(role) -> a Django test client signed in as a fresh user of that role (CSRF
    checks on, as a browser meets them)."""

    def login(role: str) -> Client:
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user(role))
        return client

    return login


@pytest.fixture
def private_cache(settings):
    """A cache of this process only: the shared Redis is cleared by other test runs, and the
    cached page of another test database must not answer here."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "noc-web-tests",
        }
    }
    cache.clear()  # locmem caches of one LOCATION outlive the settings change
