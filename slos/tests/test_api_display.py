"""The API's `display` fields of an SLO and of its status: the numbers rounded for people as
the console prints them, the stored values beside them at full precision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slos.models import SLO
from slos.tests.test_api import URL, make_slo, viewer_api, web_slo  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_an_slo_shows_its_numbers_rounded_beside_the_stored_ones(viewer_api, make_slo):  # noqa: F811
    slo = make_slo(id="checkout")
    SLO.objects.filter(pk=slo.pk).update(
        budget_total_minutes=432.0,
        budget_remaining_minutes=43.19999999999524,
        budget_used_minutes=388.80000000000476,
        budget_remaining_percent=9.999999999998899,
        current_value=99.09111111,
        burn_rate=6.54321,
        compliant=True,
        calculated_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    detail = viewer_api.get(f"{URL}checkout/").json()
    assert detail["budget_remaining_minutes"] == 43.19999999999524  # stored precision kept
    assert detail["display"] == {
        "current_value": "99.091 %",
        "budget_total_minutes": "432.0 min",
        "budget_remaining_minutes": "43.2 min",
        "budget_used_minutes": "388.8 min",
        "burn_rate": "6.5×",
        "budget_remaining_percent": "10.0 %",
    }
    [listed] = viewer_api.get(URL).json()["results"]
    assert listed["display"] == detail["display"]


def test_an_slo_never_evaluated_displays_nulls(viewer_api, make_slo):  # noqa: F811
    make_slo(id="fresh")
    display = viewer_api.get(f"{URL}fresh/").json()["display"]
    assert display["current_value"] is None and display["burn_rate"] is None


def test_the_status_displays_the_evaluation_rounded(viewer_api, web_slo):  # noqa: F811
    status = viewer_api.get(f"{URL}web-availability/status/").json()
    display = status["display"]
    assert display["budget_total_minutes"] == "43.2 min"
    assert display["budget_used_minutes"] == f"{round(status['budget_used_minutes'], 1):.1f} min"
    assert display["current_value"].endswith(" %") and len(display["current_value"]) == 8
    assert display["burn_rate"] == "0.00×"
