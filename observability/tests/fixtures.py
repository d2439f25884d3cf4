"""Fixtures of the observability tests, shared with the apps that build on it (logs, alerts,
collectors): an application with its ingest key, and a point factory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from observability import actions
from observability.points import MetricPoint


@pytest.fixture
def make_application(db):
    """make_application(slug) -> (application, ingest key in full)."""

    def make(slug: str = "shop", **fields):
        fields.setdefault("name", slug.title())
        application, _ingest_key, key = actions.application_create(actor=None, slug=slug, **fields)
        return application, key

    return make


@pytest.fixture
def application(make_application):
    return make_application("shop")[0]


def point(name: str, value: float, when: datetime | None = None, **labels: str) -> MetricPoint:
    return MetricPoint.at(name, value, labels=labels, time=when or datetime.now(UTC))
