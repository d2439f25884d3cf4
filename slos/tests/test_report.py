"""The SLA report: uptime, downtime, incidents and budget used over a calendar period, summed
from both rollups, in JSON and CSV, against a small hand-computed dataset."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.actions import incident_create_manual, incident_resolve
from incidents.models import Incident
from slos import actions
from slos.models import SLO, SLOStatus
from slos.report import Period, Range, UnknownPeriod, sla_report
from slos.tests.test_api import insert_minutes, refresh_hourly

pytestmark = pytest.mark.django_db

URL = "/api/slos/report/"
OCTOBER = {"period": "month", "date": "2026-10-15"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def october(make_service):
    """web, October 2026 (UTC), one check a minute where there are checks:

    - 09-30 18:40 down: before October in UTC, inside it in Asia/Kolkata (+05:30)
    - 10-05 10:00-10:59: 3 minutes down, 2 degraded, 55 up
    - 10-20 00:00-00:59: 60 up
    - 10-31 18:10 up; 10-31 18:40 down (after October in Kolkata)
    - 11-01 00:05 down: after October everywhere

    UTC October: 122 checks, 118 good → 96.7213 % up, 4 minutes down.
    Kolkata October: 09-30 18:40 in, 10-31 18:40 out → 122 checks, 118 good, 4 bad.
    """
    web = make_service(id="web", name="Web")
    make_service(id="db", name="Database")
    insert_minutes("web", at("2026-09-30 18:40"), up=0, down=1)
    insert_minutes("web", at("2026-10-05 10:00"), 60)
    insert_minutes("web", at("2026-10-05 10:00"), 3, up=0, down=1)
    insert_minutes("web", at("2026-10-05 10:03"), 2, up=0, degraded=1)
    insert_minutes("web", at("2026-10-20 00:00"), 60)
    insert_minutes("web", at("2026-10-31 18:10"))
    insert_minutes("web", at("2026-10-31 18:40"), up=0, down=1)
    insert_minutes("web", at("2026-11-01 00:05"), up=0, down=1)
    refresh_hourly(at("2026-09-30 00:00"))
    actions.slo_create(
        actor=None, id="web-kolkata", name="Web (IST)", service=web, sli_type="availability",
        target=Decimal("99"), window="month", time_zone="Asia/Kolkata",
    )  # fmt: skip
    actions.slo_create(
        actor=None, id="web-slices", name="Web minutes", service=web, sli_type="availability",
        target=Decimal("99.5"), window="month", budgeting_method="timeslices",
    )  # fmt: skip
    _incident(web, at("2026-10-05 10:01"))
    _incident(web, at("2026-11-01 00:06"))  # November: not counted
    return web


def _incident(service, detected_at: datetime) -> None:
    incident = incident_create_manual(actor=None, service=service, title="Down", severity="high")
    incident_resolve(incident=incident)
    Incident.objects.filter(pk=incident.pk).update(detected_at=detected_at)


# --- periods and ranges -----------------------------------------------------------------------


def test_periods_are_calendar_months_and_quarters():
    assert Period("month", date(2026, 11, 23)).label == "2026-11"
    assert Period("quarter", date(2026, 8, 10)).label == "2026-Q3"
    assert Period("quarter", date(2026, 8, 10)).bounds() == (at("2026-07-01"), at("2026-10-01"))
    start, end = Period("month", date(2026, 10, 1)).bounds(ZoneInfo("Asia/Kolkata"))
    assert (start, end) == (at("2026-09-30 18:30"), at("2026-10-31 18:30"))
    with pytest.raises(UnknownPeriod):
        Period("week", date(2026, 1, 1))


def test_a_range_reads_whole_hours_hourly_and_its_edges_by_minute():
    minutes, hours = Range("web", at("2026-09-30 18:30"), at("2026-10-31 18:30")).segments()
    assert minutes == [
        (at("2026-09-30 18:30"), at("2026-09-30 19:00")),
        (at("2026-10-31 18:00"), at("2026-10-31 18:30")),
    ]
    assert hours == (at("2026-09-30 19:00"), at("2026-10-31 18:00"))
    assert Range("web", at("2026-10-01"), at("2026-11-01")).segments() == (
        [], (at("2026-10-01"), at("2026-11-01")),
    )  # fmt: skip
    short = Range("web", at("2026-10-01 10:10"), at("2026-10-01 10:50"))
    assert short.segments() == ([(at("2026-10-01 10:10"), at("2026-10-01 10:50"))], None)


# --- the report -------------------------------------------------------------------------------


def test_the_report_sums_uptime_downtime_incidents_and_budget(october):
    report = sla_report(period="month", day=date(2026, 10, 15))
    assert report.label == "2026-10"
    assert (report.start, report.end) == (at("2026-10-01"), at("2026-11-01"))
    assert report.complete
    db, web = report.services
    assert (db.service, db.checks, db.uptime_percent, db.downtime_minutes) == ("db", 0, None, 0)
    assert web.checks == 122
    assert (web.up, web.degraded, web.down) == (116, 2, 4)
    assert web.uptime_percent == Decimal("96.7213")  # 100 × 118 / 122, to 4 places
    assert web.downtime_minutes == 4
    assert web.incidents == 1

    kolkata, slices = web.slos
    assert (kolkata.start, kolkata.end) == (at("2026-09-30 18:30"), at("2026-10-31 18:30"))
    assert (kolkata.good, kolkata.total) == (118, 122)
    # 1 % of 31 days is 446.4 minutes; 4 bad of 122 checks is the error ratio over the whole
    # (elapsed) month, not over the 122 minutes that had a check: 4/122 × 44,640 minutes.
    assert kolkata.budget_total_minutes == Decimal("446.4")
    assert kolkata.budget_used_minutes == Decimal("1463.61")  # 4 / 122 × 44,640 = 1463.6066
    assert kolkata.budget_used_percent == Decimal("327.8689")  # 1463.6066 / 446.4
    assert kolkata.sli_percent == Decimal("96.7213")
    assert kolkata.compliant is False
    # Timeslices in UTC: 122 minutes with data, 4 of them with a failure.
    assert (slices.good, slices.total) == (118, 122)
    assert slices.budget_total_minutes == Decimal("223.2")  # 0.5 % of 31 days
    assert slices.budget_used_minutes == Decimal("4")
    assert slices.budget_used_percent == Decimal("1.7921")  # 4 / 223.2


def test_a_running_period_charges_the_error_ratio_for_the_time_elapsed(october):
    # On 11 October 00:00 UTC the Kolkata month has run 10 days 5 h 30 min (14,730 minutes) and
    # holds 61 checks (09-30 18:40 and 10-05 10:00-10:59), 4 of them bad.
    report = sla_report(period="month", day=date(2026, 10, 15), now=at("2026-10-11 00:00"))
    assert not report.complete
    kolkata = report.services[1].slos[0]
    assert (kolkata.good, kolkata.total) == (57, 61)
    assert kolkata.budget_total_minutes == Decimal("446.4")
    assert kolkata.budget_used_minutes == Decimal("965.90")  # 4 / 61 × 14,730 = 965.9016


def test_the_report_reads_the_rollups_in_a_bounded_number_of_queries(
    october, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4):  # services, SLOs, incidents, the rollup sums
        sla_report(period="quarter", day=date(2026, 10, 15))


def test_the_report_endpoint_as_json(client_as, october):
    response = client_as("viewer").get(URL, OCTOBER)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["label"] == "2026-10" and body["complete"] is True
    assert body["start"] == "2026-10-01T00:00:00Z"
    web = next(s for s in body["services"] if s["service"] == "web")
    assert web["uptime_percent"] == pytest.approx(96.7213, abs=1e-4)
    assert web["downtime_minutes"] == 4
    assert web["incidents"] == 1
    assert [s["slo"] for s in web["slos"]] == ["web-kolkata", "web-slices"]


def test_the_report_of_one_service(client_as, october):
    body = client_as("viewer").get(URL, {**OCTOBER, "service": "db"}).json()
    assert [s["service"] for s in body["services"]] == ["db"]


def test_a_quarter_covers_its_three_months(client_as, october):
    body = client_as("viewer").get(URL, {"period": "quarter", "date": "2026-11-20"}).json()
    assert body["label"] == "2026-Q4"
    assert body["complete"] is False  # still running
    web = next(s for s in body["services"] if s["service"] == "web")
    assert web["checks"] == 123  # October's 122 and November's one
    assert web["downtime_minutes"] == 5
    assert web["incidents"] == 2


def test_the_report_as_csv(client_as, october):
    response = client_as("viewer").get(URL, {**OCTOBER, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="sla-2026-10.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["service"], r["slo"]) for r in rows] == [
        ("db", ""), ("web", "web-kolkata"), ("web", "web-slices"),
    ]  # fmt: skip
    db, kolkata, slices = rows
    assert db["uptime_percent"] == "" and db["checks"] == "0"
    assert kolkata["uptime_percent"] == "96.7213"
    assert kolkata["downtime_minutes"] == "4" and kolkata["incidents"] == "1"
    assert kolkata["budget_used_minutes"] == "1463.61"  # 4/122 × 44,640
    assert kolkata["compliant"] == "false"
    assert slices["budget_used_percent"] == str(round(100 * 4 / 223.2, 4))
    assert kolkata["period_start"] == "2026-10-01T00:00:00Z"


def test_the_csv_filename_names_the_month(client_as, make_service):
    make_service(id="web")
    response = client_as("viewer").get(URL, {"date": "2026-11-02", "format": "csv"})
    assert response["Content-Disposition"] == 'attachment; filename="sla-2026-11.csv"'
    assert response.content.decode().splitlines()[0].startswith("period,period_start")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "week"}, "period"),
        ({"date": "2026-13-01"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"service": "nowhere"}, "service"),
        ({"format": "xml"}, "format"),
        ({"period": "year", "format": "csv"}, "period"),
        # Out of datetime's range once the period's bounds are computed (an OverflowError or
        # ValueError, a 500, before the bounds were checked).
        ({"date": "9999-12-31"}, "date"),
        ({"period": "quarter", "date": "9999-10-01"}, "date"),
        ({"date": "0001-01-15"}, "date"),
        ({"date": "9999-12-31", "format": "csv"}, "date"),
    ],
)
def test_bad_report_parameters_are_a_400_naming_them(client_as, params, field):
    response = client_as("viewer").get(URL, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()["errors"]


def test_the_first_month_in_a_zone_east_of_utc_is_a_400_not_a_500(client_as, make_service):
    # Year 1 in Asia/Tokyo begins on 31 December of year 0 in UTC, which datetime cannot hold.
    actions.slo_create(
        actor=None, id="tokyo", name="Tokyo", service=make_service(id="web"),
        sli_type="availability", target=Decimal("99"), window="month", time_zone="Asia/Tokyo",
    )  # fmt: skip
    response = client_as("viewer").get(URL, {"date": "0001-01-15"})
    assert response.status_code == 400, response.content
    assert "date" in response.json()["errors"]


@pytest.mark.parametrize("day", ["1970-01-01", "9998-12-31"])
def test_the_first_and_last_days_a_report_covers(client_as, make_service, day):
    # The bounds in the zones furthest east and west of UTC stay inside datetime's range.
    web = make_service(id="web")
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        actions.slo_create(
            actor=None, id=zone.replace("/", "-").replace("+", "p").lower(), name=zone,
            service=web, sli_type="availability", target=Decimal("99"), window="month",
            time_zone=zone,
        )  # fmt: skip
    for period in ("month", "quarter"):
        response = client_as("viewer").get(URL, {"date": day, "period": period})
        assert response.status_code == 200, response.content


def test_a_future_period_has_no_data_yet(client_as, october):
    body = client_as("viewer").get(URL, {"date": "2027-03-01"}).json()
    assert body["complete"] is False
    web = next(s for s in body["services"] if s["service"] == "web")
    assert (web["checks"], web["uptime_percent"]) == (0, None)
    assert web["slos"][0]["budget_used_minutes"] == 0


def test_the_report_is_read_only_for_anonymous_callers(api_client):
    assert api_client.get(URL).status_code in (401, 403)


def test_a_calendar_slo_in_a_half_hour_zone_reads_its_month_as_the_report_does(make_service):
    # October in Asia/Kolkata begins at 09-30 18:30 UTC, inside an hour: the live evaluation
    # must not count 18:00-18:30 (September there) from the hourly rollup.
    web = make_service(id="web")
    insert_minutes("web", at("2026-09-30 18:00"), 30, up=0, down=1)  # September in Kolkata
    insert_minutes("web", at("2026-09-30 18:30"), 120)  # October: two hours of checks
    insert_minutes("web", at("2026-09-30 18:45"), up=0, down=1)  # one failed, before 19:00
    refresh_hourly(at("2026-09-30 00:00"))
    for budgeting in ("occurrences", "timeslices"):
        actions.slo_create(
            actor=None, id=f"kolkata-{budgeting}", name=budgeting, service=web,
            sli_type="availability", target=Decimal("99"), window="month",
            time_zone="Asia/Kolkata", budgeting_method=budgeting,
        )  # fmt: skip
    now = at("2026-10-01 06:00")  # 690 minutes into the month: read from the hourly rollup
    actions.slos_evaluate(now=now)
    report = sla_report(period="month", day=date(2026, 10, 15), now=now)
    for line in report.services[0].slos:
        status = SLOStatus.objects.get(slo_id=line.slo)
        assert (status.good, status.total) == (line.good, line.total) == (119, 120), line.slo
        assert status.budget_used_minutes == pytest.approx(line.budget_used_minutes, abs=0.01)
        assert status.minutes_without_data == 690 - 120
    occurrences = SLOStatus.objects.get(slo_id="kolkata-occurrences")
    assert occurrences.budget_used_minutes == pytest.approx(690 / 120)  # 1/120 of 690 minutes
    assert SLOStatus.objects.get(slo_id="kolkata-timeslices").budget_used_minutes == 1


def test_the_evaluation_reads_every_calendar_slo_in_the_same_queries(
    make_service, django_assert_num_queries
):
    # The minutes before the first whole hour are one more set-based read, not one per SLO.
    web = make_service(id="web")
    insert_minutes("web", at("2026-09-30 18:00"), 180)
    refresh_hourly(at("2026-09-30 00:00"))
    now = at("2026-10-01 06:00")

    def add(n: int) -> None:
        for i in range(n):
            zone = ("Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "UTC")[i % 4]
            actions.slo_create(
                actor=None, id=f"cal-{SLO.objects.count()}", name="cal", service=web,
                sli_type="availability", target=Decimal("99"), window="month", time_zone=zone,
            )  # fmt: skip

    add(2)
    actions.slos_evaluate(now=now - timedelta(minutes=1))  # creates the history partition
    with CaptureQueriesContext(connection) as few:
        actions.slos_evaluate(now=now)
    add(6)
    with django_assert_num_queries(len(few.captured_queries)):
        actions.slos_evaluate(now=now + timedelta(minutes=1))


def test_october_has_31_days_of_budget():
    # Guards the hand-computed budgets above.
    assert (at("2026-11-01") - at("2026-10-01")) / timedelta(minutes=1) == 31 * 1440


def test_a_period_across_a_dst_change_has_its_real_length(make_service):
    # October in Madrid ends on CET: 31 days and 1 hour, so 1 % of it is 447 minutes.
    actions.slo_create(
        actor=None, id="madrid", name="Madrid", service=make_service(id="web"),
        sli_type="availability", target=Decimal("99"), time_zone="Europe/Madrid",
    )  # fmt: skip
    [web] = sla_report(period="month", day=date(2026, 10, 15)).services
    assert web.slos[0].budget_total_minutes == pytest.approx(447.0)
