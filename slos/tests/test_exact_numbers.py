"""Budgets and percentages reach the API, the admin and the CSV report without float noise:
computed exactly, rounded once to 4 decimals (the report: minutes to 2)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from slos import actions
from slos.report import report_csv, sla_report
from slos.tests.test_api import insert_minutes
from slos.tests.test_evaluation import NOW, fill, make_slo

pytestmark = pytest.mark.django_db

# A JSON or CSV number with more than 4 decimals, or in exponent form.
NOISY = re.compile(  # not the seconds of a time, nor letters and digits of a token
    r"(?<![:\d])-?\d+\.\d{5,}|(?<![\w.])-?\d+(?:\.\d+)?[eE][-+]?\d+(?!\w)"
)


def numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers(item)]
    return [value] if isinstance(value, float) else []


@pytest.fixture
def overspent(make_service):
    """24 h at 99.9 %: 1.44 minutes of budget ((1 − 0.999) × 1440, which floats make
    1.4400000000000013); 3 of 1,440 checks failed, so 3 minutes used and 1.56 overspent."""
    service = make_service(id="web")
    slo = make_slo(service, id="web-day", window="24h", target="99.9")
    fill(service, NOW - timedelta(hours=24), 24 * 60, down=lambda i: i in (10, 500, 900))
    actions.slos_evaluate(now=NOW)
    return slo


def test_the_api_gives_budgets_as_decimals(client_as, overspent):
    api = client_as("viewer")
    detail = api.get(f"/api/slos/{overspent.id}/")
    assert not NOISY.search(detail.content.decode()), detail.content
    body = detail.json()
    assert body["budget_total_minutes"] == 1.44
    assert body["budget_used_minutes"] == 3.0
    assert body["budget_remaining_minutes"] == -1.56  # not -1.5599999999999987
    assert body["budget_remaining_percent"] == -108.3333
    assert body["current_value"] == 99.7917  # 1437 / 1440
    status = api.get(f"/api/slos/{overspent.id}/status/").json()
    assert (status["budget_used_percent"], status["budget_remaining_percent"]) == (
        208.3333, -108.3333,
    )  # fmt: skip
    for url in (f"/api/slos/{overspent.id}/history/", f"/api/slos/{overspent.id}/budget/"):
        response = api.get(url)
        assert response.status_code == 200
        assert not NOISY.search(response.content.decode()), (url, response.content)
    points = api.get(f"/api/slos/{overspent.id}/budget/").json()["points"]
    assert points[-1]["budget_remaining_percent"] == -108.3333


def test_the_admin_shows_the_same_decimals(admin_user, overspent):
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/slos/slo/{overspent.id}/change/").content.decode()
    assert "-1.56" in page and "1.44" in page
    # What a person reads: the text between tags, not attribute values such as the CSRF token
    # (random letters and digits that may spell "3e3").
    body = page.split("<body", 1)[1]
    text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]*>", " ", body, flags=re.S)
    assert not NOISY.search(text), NOISY.search(text)


def test_the_csv_report_writes_each_number_as_the_decimal_computed(client_as, overspent):
    response = client_as("viewer").get(
        "/api/slos/report/", {"date": NOW.date().isoformat(), "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    line = next(r for r in rows if r["slo"] == "web-day")
    assert line["target"] == "99.9"
    for name in CSV_NUMBERS:
        assert re.fullmatch(r"-?\d+(\.\d{1,4})?", line[name]), (name, line[name])
    # The JSON report holds the same numbers.
    body = client_as("viewer").get("/api/slos/report/", {"date": NOW.date().isoformat()}).json()
    assert not NOISY.search(json.dumps(body))
    assert all(len(repr(n).split(".")[-1]) <= 4 for n in numbers(body))


CSV_NUMBERS = (
    "checks", "uptime_percent", "downtime_minutes", "target", "sli_percent",
    "budget_total_minutes", "budget_used_minutes", "budget_used_percent",
)  # fmt: skip


def test_the_csv_rounds_a_half_as_people_do_not_as_the_float_falls(make_service):
    # October 2026 43 minutes in: 40 checks, 1 failed; occurrences charge 1/40 of the elapsed
    # 43 minutes: exactly 1.075 minutes, which (1 / 40) * 43 in floats rounds to 1.07.
    start = datetime(2026, 10, 1, tzinfo=UTC)
    service = make_service(id="web")
    make_slo(service, id="web-month", window="month", target="99")
    insert_minutes("web", start, 39)
    insert_minutes("web", start + timedelta(minutes=39), up=0, down=1)
    report = sla_report(period="month", day=date(2026, 10, 1), now=start + timedelta(minutes=43))
    [line] = report.services[0].slos
    assert line.budget_used_minutes == Decimal("1.08")
    [row] = csv.DictReader(io.StringIO(report_csv(report)))
    assert (row["budget_used_minutes"], row["budget_total_minutes"]) == ("1.08", "446.4")
    assert row["budget_used_percent"] == "0.2408"  # 1.075 / 446.4 = 0.24081…
    assert (row["target"], row["sli_percent"]) == ("99", "97.5")
