"""The error-rate SLI: its target is the maximum percent of failed checks. Compliance, budget,
burn rate, alerts and the SLA report follow from that, judged exactly at the boundary."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from incidents.models import Incident
from slos import actions, budget, sli
from slos.models import SLOAlert
from slos.report import sla_report
from slos.tests.test_evaluation import NOW, fill, make_slo

pytestmark = pytest.mark.django_db


def readings(good: int, total: int) -> sli.Readings:
    sums = sli.Sums(n_up=good, n_down=total - good, minutes=total, good_minutes=good)
    return sli.Readings(window=sums, lookbacks={lb: sums for lb in budget.LOOKBACKS})


@pytest.mark.parametrize(
    ("failed", "compliant", "used", "risk"),
    [
        (0, True, 0.0, "none"),
        (1, True, 14.4, "critical"),  # exactly 1 %: compliant, and the budget is all spent
        (2, False, 28.8, "critical"),
    ],
)
def test_an_error_rate_target_is_the_maximum_percent_failed(
    make_service, failed, compliant, used, risk
):
    # 1 % of 24 hours is 14.4 minutes of budget; 100 checks over the day, `failed` of them down.
    slo = make_slo(make_service(), sli_type="error_rate", target="1", window="24h")
    evaluation = actions.evaluate(slo, readings(100 - failed, 100), NOW)
    assert evaluation.value == failed  # the percent failed
    assert evaluation.compliant is compliant
    assert evaluation.budget.total_minutes == 14.4
    assert evaluation.budget.used_minutes == used
    assert evaluation.burn == failed  # 1 % failing burns the budget exactly over the window
    assert evaluation.risk == risk


def test_the_issues_example_half_failing_against_1_percent_is_not_compliant(make_service):
    slo = make_slo(make_service(), sli_type="error_rate", target="1", window="24h")
    evaluation = actions.evaluate(slo, readings(50, 100), NOW)
    assert (evaluation.value, evaluation.compliant) == (50, False)
    assert evaluation.burn == 50


@pytest.mark.parametrize(
    ("sli_type", "percent", "good", "compliant"),
    [
        ("availability", "99.9", 999, True),  # 0.999 is not below 99.9/100 (as floats it was)
        ("availability", "99.9", 998, False),
        ("error_rate", "0.1", 999, True),
        ("error_rate", "0.1", 998, False),
    ],
)
def test_the_boundary_is_judged_exactly(make_service, sli_type, percent, good, compliant):
    # (`target` is the name of the test HTTP server's fixture.)
    slo = make_slo(make_service(), sli_type=sli_type, target=percent, window="24h")
    assert actions.evaluate(slo, readings(good, 1000), NOW).compliant is compliant


def test_a_fast_failing_error_rate_slo_pages(make_service):
    service = make_service()
    slo = make_slo(service, sli_type="error_rate", target="1", window="24h")
    # The last hour: every 5th check failed (20 %): 1 h and 5 min burn 20 ≥ 14.4.
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: i % 5 == 4)
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert (slo.current_value, slo.compliant, slo.burn_rate) == (20.0, False, 20.0)
    alert = SLOAlert.objects.get(slo=slo, rule="page-1h-5m", state="firing")
    assert alert.long_burn == 20.0
    assert alert.incident == Incident.objects.get(service=service, source="slo")


def test_a_healthy_error_rate_slo_stays_quiet(make_service):
    service = make_service()
    slo = make_slo(service, sli_type="error_rate", target="5", window="24h")
    fill(service, NOW - timedelta(minutes=60), 60, down=lambda i: i == 30)  # 1.67 % failed
    actions.slos_evaluate(now=NOW)
    slo.refresh_from_db()
    assert slo.compliant is True
    assert slo.burn_rate == pytest.approx((1 / 60) / 0.05, abs=1e-4)
    assert not SLOAlert.objects.filter(slo=slo).exists()


def test_the_sla_report_judges_an_error_rate_slo_against_its_maximum(make_service):
    service = make_service(id="web")
    make_slo(service, id="web-errors", sli_type="error_rate", target="2", window="month")
    start = NOW.replace(day=1, hour=0, minute=0)
    if NOW - start < timedelta(hours=2):
        pytest.skip("too close to the start of the month")
    fill(service, NOW - timedelta(minutes=100), 100, down=lambda i: i < 3)  # 3 % failed
    [line] = sla_report(period="month", day=date(NOW.year, NOW.month, 1), now=NOW).services[0].slos
    assert (line.target, line.sli_percent, line.compliant) == (Decimal("2"), Decimal("3"), False)
    elapsed = Decimal((NOW - start) // timedelta(minutes=1))
    assert line.budget_used_minutes == (Decimal("0.03") * elapsed).quantize(Decimal("0.01"))


def test_the_api_documents_what_an_error_rate_target_means(client_as):
    schema = client_as("viewer").get("/api/schema/", {"format": "json"}).json()
    target = schema["components"]["schemas"]["SLO"]["properties"]["target"]
    assert "Error rate: the maximum percent of failed checks" in target["description"]
