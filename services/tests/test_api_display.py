"""The uptime endpoint's `display` fields: uptime rounded down as the pages print it, response
times in ms or s; the stored figures beside them at full precision."""

from __future__ import annotations

import pytest

from services.tests.test_api import history, viewer_api  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_uptime_displays_its_numbers_rounded(viewer_api, history):  # noqa: F811
    body = viewer_api.get("/api/services/web/uptime/", {"window": "7d"}).json()
    assert body["uptime_percent"] == pytest.approx(9 / 11 * 100)  # 81.8181…
    assert body["display"] == {
        "uptime_percent": "81.81 %",  # rounded down, never up past what was measured
        "response_time_avg_ms": f"{body['response_time_avg_ms']:.0f} ms",
        "response_time_p95_ms": f"{body['response_time_p95_ms'] / 1000:.2f} s",  # over 1 s
    }


def test_uptime_without_checks_displays_nulls(viewer_api, make_service):  # noqa: F811
    make_service(id="new")
    display = viewer_api.get("/api/services/new/uptime/", {"window": "90d"}).json()["display"]
    assert display == {
        "uptime_percent": None, "response_time_avg_ms": None, "response_time_p95_ms": None,
    }  # fmt: skip
