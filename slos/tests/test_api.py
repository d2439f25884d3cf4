"""The SLOs API: CRUD through the actions with its audit, every refused input, the status,
history, burn-down, summary and alert reads over an SLO evaluated on inserted check data."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.rollups import ROLLUPS, is_native, refresh
from services.tests.fixtures import ensure_partitions
from services.timeseries import ROLLUP_HOURLY_TABLE, ROLLUP_TABLE
from slos import actions, queries
from slos.models import SLO, SLOAlert, SLOStatus
from slos.timeseries import SLO_HISTORY

pytestmark = pytest.mark.django_db

URL = "/api/slos/"


# --- check data under an SLO ------------------------------------------------------------------

UPSERT_MINUTES = """
    INSERT INTO services_checkrollup
        (bucket, service_id, n_up, n_degraded, n_down, n_maintenance, rt_count, rt_sum, rt_min,
         rt_max, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000)
    SELECT %(start)s + g * interval '1 minute', %(service)s, %(up)s, %(degraded)s, %(down)s, 0,
           %(n)s, %(n)s * %(ms)s, %(ms)s, %(ms)s,
           CASE WHEN %(ms)s <= 50 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 100 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 250 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 500 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 1000 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 2500 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 5000 THEN %(n)s ELSE 0 END,
           CASE WHEN %(ms)s <= 10000 THEN %(n)s ELSE 0 END
    FROM generate_series(0, %(minutes)s - 1) AS g
    ON CONFLICT (service_id, bucket) DO UPDATE SET
        n_up = EXCLUDED.n_up, n_degraded = EXCLUDED.n_degraded, n_down = EXCLUDED.n_down,
        rt_count = EXCLUDED.rt_count, rt_sum = EXCLUDED.rt_sum, le_50 = EXCLUDED.le_50,
        le_100 = EXCLUDED.le_100, le_250 = EXCLUDED.le_250, le_500 = EXCLUDED.le_500,
        le_1000 = EXCLUDED.le_1000, le_2500 = EXCLUDED.le_2500, le_5000 = EXCLUDED.le_5000,
        le_10000 = EXCLUDED.le_10000
"""


def insert_minutes(
    service_id: str,
    start: datetime,
    minutes: int = 1,
    *,
    up: int = 1,
    degraded: int = 0,
    down: int = 0,
    ms: float = 80.0,
) -> None:
    """Per-minute rollup rows, each with these counts, from `start` (a later call overwrites)."""
    if not is_native(ROLLUPS["services_checkrollup"]):
        pytest.skip("inserts into the native rollup tables (a continuous aggregate here)")
    partitions.ensure(ROLLUP_TABLE, start, start + timedelta(minutes=minutes))
    params = {"start": start, "service": service_id, "up": up, "degraded": degraded,
              "down": down, "n": up + degraded + down, "ms": ms, "minutes": minutes}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_MINUTES, params)


def refresh_hourly(since: datetime) -> None:
    """Roll the inserted minutes up into the hourly rollup, as the beat task does."""
    partitions.ensure(ROLLUP_HOURLY_TABLE, since, timezone.now())
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup_hourly", defaults={"upto": since, "dirty_since": None}
    )
    refresh(ROLLUPS["services_checkrollup_hourly"])


def minute_now() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def admin_api(client_as):
    return client_as(Role.ADMIN)


@pytest.fixture
def viewer_api(client_as):
    return client_as(Role.VIEWER)


@pytest.fixture
def make_slo(make_service):
    def make(**fields) -> SLO:
        if "service" not in fields:
            fields["service"] = make_service()
        fields.setdefault("id", f"{fields['service'].pk}-availability")
        fields.setdefault("name", fields["id"])
        fields.setdefault("sli_type", "availability")
        fields.setdefault("target", Decimal("99.9"))
        return actions.slo_create(actor=None, **fields)

    return make


def payload(service_id: str, **overrides) -> dict:
    data = {"id": "web-availability", "name": "Web availability", "service": service_id,
            "sli_type": "availability", "target": 99.9, "window": "30d"}  # fmt: skip
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def audit_of(slo_id: str) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(target_type="slos.slo", target_id=slo_id)
    return list(events.order_by("time"))


# --- CRUD -------------------------------------------------------------------------------------


def test_an_admin_creates_an_slo_through_the_action_and_it_is_audited(admin_api, make_service):
    make_service(id="web")
    response = admin_api.post(URL, payload("web", time_zone="Europe/Madrid"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == "web-availability"
    assert body["target"] == 99.9
    assert body["service_name"] == "Service 1"
    assert body["calculated_at"] is None and body["violation_risk"] == "none"
    assert SLO.objects.get(pk="web-availability").time_zone == "Europe/Madrid"
    [event] = audit_of("web-availability")
    assert event.action == "create"


def test_updating_an_slo_audits_the_change_and_keeps_its_id(admin_api, make_slo):
    make_slo(id="web-availability")
    response = admin_api.patch(
        f"{URL}web-availability/", {"target": "99.5", "id": "renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["id"] == "web-availability"
    assert SLO.objects.get(pk="web-availability").target == Decimal("99.5")
    [update] = [e for e in audit_of("web-availability") if e.action == "update"]
    assert update.changes["target"] == ["99.9000", "99.5000"]


def test_a_full_update_replaces_the_configuration(admin_api, make_slo, make_service):
    make_slo(id="web-availability")
    make_service(id="api")
    body = payload("api", name="API latency", sli_type="latency", latency_threshold_ms=300)
    response = admin_api.put(f"{URL}web-availability/", body, format="json")
    assert response.status_code == 200, response.content
    slo = SLO.objects.get(pk="web-availability")
    assert (slo.service_id, slo.sli_type, slo.latency_threshold_ms) == ("api", "latency", 300)


def test_deleting_an_slo_removes_its_history_and_is_audited(admin_api, make_slo):
    make_slo(id="web-availability")
    actions.slos_evaluate(now=minute_now())
    assert SLOStatus.objects.filter(slo_id="web-availability").exists()
    response = admin_api.delete(f"{URL}web-availability/")
    assert response.status_code == 204
    assert not SLO.objects.filter(pk="web-availability").exists()
    assert not SLOStatus.objects.filter(slo_id="web-availability").exists()
    assert [e.action for e in audit_of("web-availability")] == ["create", "delete"]


def test_the_list_and_detail_show_the_cached_status(viewer_api, make_slo):
    make_slo(id="web-availability")
    SLO.objects.filter(pk="web-availability").update(
        current_value=99.95, compliant=True, budget_remaining_percent=50.0, burn_rate=0.5,
        violation_risk="medium",
    )  # fmt: skip
    listing = viewer_api.get(URL).json()
    assert listing["count"] == 1
    detail = viewer_api.get(f"{URL}web-availability/").json()
    assert detail["current_value"] == 99.95
    assert detail["violation_risk"] == "medium"
    for name in ("budget_total_minutes", "budget_used_minutes", "budget_exhausted_at",
                 "minutes_without_data", "calculated_at"):  # fmt: skip
        assert name in detail


def test_status_fields_are_read_only(admin_api, make_slo):
    make_slo(id="web-availability")
    response = admin_api.patch(
        f"{URL}web-availability/", {"violation_risk": "critical", "compliant": False}, format="json"
    )
    assert response.status_code == 200
    slo = SLO.objects.get(pk="web-availability")
    assert (slo.violation_risk, slo.compliant) == ("none", None)


def test_the_list_costs_the_same_queries_for_many_slos(
    viewer_api, make_slo, django_assert_num_queries
):
    make_slo(id="one")
    with django_assert_num_queries(2) as few:  # the count and the page, services joined
        assert viewer_api.get(URL).status_code == 200
    for n in range(6):
        make_slo(id=f"more-{n}")
    with django_assert_num_queries(len(few.captured_queries)):
        assert viewer_api.get(URL).json()["count"] == 7


# --- refused input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target": 0}, "target"),
        ({"target": 100}, "target"),
        ({"target": 120}, "target"),
        ({"target": -1}, "target"),
        ({"target": "lots"}, "target"),
        ({"window": "2w"}, "window"),
        ({"sli_type": "apdex"}, "sli_type"),
        ({"budgeting_method": "vibes"}, "budgeting_method"),
        ({"sli_type": "latency"}, "latency_threshold_ms"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),  # directories of the zone database
        ({"time_zone": "Etc"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"time_zone": "zone.tab"}, "time_zone"),  # a file that is not a zone
        ({"service": "nowhere"}, "service"),
        ({"id": "not a slug"}, "id"),
        ({"id": "summary"}, "id"),
        ({"id": "report"}, "id"),
        ({"name": None}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(
    admin_api, make_service, overrides, field
):
    make_service(id="web")
    response = admin_api.post(URL, payload("web", **overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not SLO.objects.exists()
    assert not AuditEvent.objects.filter(target_type="slos.slo").exists()


def test_a_latency_slo_on_a_push_service_is_refused(admin_api, make_service):
    make_service(id="cron-job", kind="push", url="")
    body = payload("cron-job", sli_type="latency", latency_threshold_ms=500)
    response = admin_api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert "sli_type" in response.json()["errors"]
    assert not SLO.objects.exists()


def test_a_refused_update_changes_nothing(admin_api, make_slo):
    make_slo(id="web-availability")
    response = admin_api.patch(
        f"{URL}web-availability/", {"sli_type": "latency", "target": 99.0}, format="json"
    )
    assert response.status_code == 400
    assert "latency_threshold_ms" in response.json()["errors"]
    slo = SLO.objects.get(pk="web-availability")
    assert (slo.sli_type, slo.target) == ("availability", Decimal("99.9"))
    assert [e.action for e in audit_of("web-availability")] == ["create"]


@pytest.mark.parametrize("zone", ["America", "Etc", "Europe"])
def test_an_update_to_a_directory_of_the_zone_database_is_a_400(admin_api, make_slo, zone):
    make_slo(id="web-availability", window="month")
    response = admin_api.patch(f"{URL}web-availability/", {"time_zone": zone}, format="json")
    assert response.status_code == 400, response.content
    assert "time_zone" in response.json()["errors"]
    assert SLO.objects.get(pk="web-availability").time_zone == "UTC"


def test_a_duplicate_id_is_refused(admin_api, make_slo):
    slo = make_slo(id="web-availability")
    response = admin_api.post(URL, payload(slo.service_id), format="json")
    assert response.status_code == 400
    assert "id" in response.json()["errors"]


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_read_but_cannot_write(client_as, make_slo, make_service, role):
    make_slo(id="web-availability")
    make_service(id="api")
    client = client_as(role)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}web-availability/").status_code == 200
    response = client.post(URL, payload("api", id="api-availability"), format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["message"]
    assert client.patch(f"{URL}web-availability/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"{URL}web-availability/").status_code == 403
    assert SLO.objects.count() == 1


def test_anonymous_callers_are_refused(api_client, make_slo):
    make_slo(id="web-availability")
    assert api_client.get(URL).status_code in (401, 403)
    assert api_client.get(f"{URL}summary/").status_code in (401, 403)


# --- filters and ordering ---------------------------------------------------------------------


def test_filters_and_ordering_by_risk(viewer_api, make_slo, make_service):
    web, api = make_service(id="web"), make_service(id="api")
    make_slo(id="a", service=web, window="7d")
    make_slo(id="b", service=web, sli_type="latency", latency_threshold_ms=200)
    make_slo(id="c", service=api, enabled=False)
    SLO.objects.filter(pk="a").update(violation_risk="high", compliant=True)
    SLO.objects.filter(pk="b").update(violation_risk="critical", compliant=False)

    def ids(**params) -> list[str]:
        response = viewer_api.get(URL, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(service="web") == ["a", "b"]
    assert ids(sli_type="latency") == ["b"]
    assert ids(window="7d") == ["a"]
    assert ids(enabled="false") == ["c"]
    assert ids(violation_risk=["high", "critical"]) == ["a", "b"]
    assert ids(compliant="false") == ["b"]
    assert ids(evaluated="false") == ["a", "b", "c"]
    assert ids(ordering="-risk") == ["b", "a", "c"]
    assert ids(search="c") == ["c"]


def test_an_unknown_filter_value_is_a_400(viewer_api):
    response = viewer_api.get(URL, {"window": "2w"})
    assert response.status_code == 400
    assert "window" in response.json()["errors"]


# --- an SLO evaluated over 30 days of checks --------------------------------------------------


@pytest.fixture
def web_slo(make_slo, make_service):
    """web: one check a minute for 30 days (from the hour the window starts in) with 12 failed
    minutes ten days ago; a 99.9 % rolling 30-day SLO evaluated now."""
    now = minute_now()
    start = (now - timedelta(days=30)).replace(minute=0)
    service = make_service(id="web")
    insert_minutes("web", start, int((now - start) / timedelta(minutes=1)))
    insert_minutes("web", now - timedelta(days=10), 12, up=0, down=1)
    refresh_hourly(start)
    slo = make_slo(id="web-availability", service=service, window="30d")
    assert actions.slos_evaluate(now=now) == 1
    return slo, now


def test_the_evaluated_status_matches_the_hand_computed_budget(viewer_api, web_slo):
    _, now = web_slo
    observed = 30 * 24 * 60 + now.minute  # the window is read from the hour it starts in
    detail = viewer_api.get(f"{URL}web-availability/").json()
    # (1 − 0.999) × 30 days = 43.2 minutes; 12 failed of `observed` checks is the error ratio
    # over the 30-day window: 12 × 43,200 / observed (12 minutes but for the hour's alignment).
    used = 12 * 43_200 / observed
    assert detail["budget_total_minutes"] == pytest.approx(43.2)
    assert detail["budget_used_minutes"] == pytest.approx(used, abs=1e-4)
    assert detail["budget_remaining_minutes"] == pytest.approx(43.2 - used, abs=1e-4)
    assert detail["budget_remaining_percent"] == pytest.approx(100 * (43.2 - used) / 43.2, abs=1e-4)
    assert detail["current_value"] == pytest.approx(100 * (observed - 12) / observed, abs=1e-4)
    assert detail["compliant"] is True
    assert detail["burn_rate"] == 0.0
    assert detail["violation_risk"] == "low"  # under 75 % of the budget left
    assert detail["budget_exhausted_at"] is None  # not burning now
    assert detail["minutes_without_data"] == 0
    assert detail["calculated_at"].startswith(now.strftime("%Y-%m-%dT%H:%M"))


def test_status_is_the_latest_evaluation(viewer_api, web_slo):
    _, now = web_slo
    actions.slos_evaluate(now=now - timedelta(minutes=5))
    response = viewer_api.get(f"{URL}web-availability/status/")
    assert response.status_code == 200
    status = response.json()
    assert status["time"].startswith(now.strftime("%Y-%m-%dT%H:%M"))
    used = 12 * 43_200 / (30 * 24 * 60 + now.minute)  # see the test above
    assert status["budget_total_minutes"] == pytest.approx(43.2)
    assert status["budget_used_minutes"] == pytest.approx(used, abs=1e-4)
    assert status["budget_remaining_percent"] == pytest.approx(100 * (43.2 - used) / 43.2)
    assert status["target"] == 99.9 and status["violation_risk"] == "low"


def test_status_of_an_slo_never_evaluated_is_404(viewer_api, make_slo):
    make_slo(id="web-availability")
    response = viewer_api.get(f"{URL}web-availability/status/")
    assert response.status_code == 404
    assert "not been evaluated" in response.json()["message"]
    assert viewer_api.get(f"{URL}nothing/status/").status_code == 404


def test_history_is_newest_first_and_limited(viewer_api, web_slo):
    _, now = web_slo
    for minutes in (1, 2, 3):
        actions.slos_evaluate(now=now - timedelta(minutes=minutes))
    body = viewer_api.get(f"{URL}web-availability/history/").json()
    assert body["count"] == 4
    times = [row["time"] for row in body["results"]]
    assert times == sorted(times, reverse=True)
    limited = viewer_api.get(f"{URL}web-availability/history/", {"limit": 2}).json()
    assert [row["time"] for row in limited["results"]] == times[:2]
    ranged = viewer_api.get(
        f"{URL}web-availability/history/",
        {"from": (now - timedelta(minutes=2)).isoformat(), "to": now.isoformat()},
    ).json()
    assert [row["time"] for row in ranged["results"]] == times[1:3]


@pytest.mark.parametrize("limit", ["0", "-5", "10001", "many"])
def test_an_invalid_history_limit_is_a_400_naming_it(viewer_api, make_slo, limit):
    make_slo(id="web-availability")
    response = viewer_api.get(f"{URL}web-availability/history/", {"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]


def test_history_from_after_to_is_a_400(viewer_api, make_slo):
    make_slo(id="web-availability")
    now = timezone.now()
    response = viewer_api.get(
        f"{URL}web-availability/history/",
        {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 400
    assert "from" in response.json()["errors"]


def test_the_summary_puts_the_most_at_risk_first(viewer_api, make_slo, django_assert_num_queries):
    for slo_id in ("calm", "critical-low", "critical-lower", "high", "x"):
        make_slo(id=slo_id)
    cache = {
        "calm": ("none", 90.0, True),
        "critical-low": ("critical", 5.0, False),
        "critical-lower": ("critical", -20.0, False),
        "high": ("high", 20.0, True),
        "x": ("none", None, None),
    }
    for slo_id, (risk, left, compliant) in cache.items():
        SLO.objects.filter(pk=slo_id).update(
            violation_risk=risk, budget_remaining_percent=left, compliant=compliant
        )
    with django_assert_num_queries(1):
        body = viewer_api.get(f"{URL}summary/").json()
    assert [s["id"] for s in body["slos"]] == [
        "critical-lower", "critical-low", "high", "calm", "x",
    ]  # fmt: skip
    assert body["total"] == 5
    assert (body["compliant"], body["not_compliant"], body["not_evaluated"]) == (2, 2, 1)
    assert body["by_risk"] == {"critical": 2, "high": 1, "medium": 0, "low": 0, "none": 2}
    assert body["slos"][0]["service_name"]


def test_alerts_lists_the_slos_burn_rate_alerts(viewer_api, make_slo):
    slo = make_slo(id="web-availability")
    other = make_slo(id="other")
    now = timezone.now()
    for target, rule, fired in ((slo, "page-1h-5m", 2), (slo, "ticket-1d-2h", 1), (other, "x", 0)):
        SLOAlert.objects.create(
            slo=target, rule=rule, severity="page", threshold=14.4, long_burn=20.0,
            short_burn=30.0, fired_at=now - timedelta(hours=fired),
        )  # fmt: skip
    body = viewer_api.get(f"{URL}web-availability/alerts/").json()
    assert body["count"] == 2
    assert [a["rule"] for a in body["results"]] == ["ticket-1d-2h", "page-1h-5m"]
    assert body["results"][0]["state"] == "firing"


# --- the burn-down series ---------------------------------------------------------------------

INSERT_HISTORY = """
    INSERT INTO slos_slostatus
        (slo_id, time, sli_type, "window", current_value, target, compliant, good, total,
         budget_total_minutes, budget_remaining_minutes, budget_used_minutes,
         budget_used_percent, burn_rate, violation_risk, minutes_without_data)
    SELECT %(slo)s, %(now)s - g * interval '5 minutes', 'availability', '7d', 99.9, 99.9, true,
           1, 1, 10.08, 10.08 - g * 0.001, g * 0.001, g * 0.001 / 10.08 * 100, 0, 'none', 0
    FROM generate_series(0, %(rows)s - 1) AS g
"""


def insert_history(slo_id: str, now: datetime, rows: int) -> None:
    """One row every 5 minutes back from `now`; the budget left grows back in time."""
    ensure_partitions(SLO_HISTORY, now - timedelta(days=8), now + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute(INSERT_HISTORY, {"slo": slo_id, "now": now, "rows": rows})


def test_the_burn_down_takes_the_last_row_of_each_bucket(make_slo):
    slo = make_slo(id="web-availability", window="7d")
    now = minute_now()
    insert_history(slo.pk, now, rows=7 * 24 * 12)  # 7 days, every 5 minutes
    burn_down = queries.slo_burn_down(slo, now=now + timedelta(seconds=1))
    assert burn_down.bucket == timedelta(minutes=21)  # ceil(10,080 / 500)
    assert len(burn_down.points) == 480
    times = [p.time for p in burn_down.points]
    assert times == sorted(times)
    assert times[-1] == now  # the newest row closes the last bucket
    for point in burn_down.points:
        age = (now - point.time) / timedelta(minutes=5)
        assert point.budget_remaining_minutes == pytest.approx(10.08 - age * 0.001)
        assert point.budget_remaining_percent == pytest.approx(100 - age * 0.001 / 10.08 * 100)
    # Each point is the last row of its bucket: the next row (5 minutes on) is in the next one.
    start = burn_down.window_start
    for point in burn_down.points[:-1]:
        bucket = (point.time - start) // burn_down.bucket
        assert (point.time + timedelta(minutes=5) - start) // burn_down.bucket == bucket + 1


def test_the_budget_endpoint_serves_at_most_500_points(viewer_api, make_slo):
    slo = make_slo(id="web-availability", window="7d")
    insert_history(slo.pk, minute_now(), rows=7 * 24 * 12)
    body = viewer_api.get(f"{URL}web-availability/budget/").json()
    assert 400 < len(body["points"]) <= 500
    assert body["bucket_seconds"] == 21 * 60
    assert body["budget_total_minutes"] == pytest.approx(10.08)
    assert set(body["points"][0]) == {
        "time", "budget_remaining_minutes", "budget_remaining_percent",
    }  # fmt: skip


def test_the_budget_of_an_slo_without_history_is_empty(viewer_api, make_slo):
    make_slo(id="web-availability", window="month")
    body = viewer_api.get(f"{URL}web-availability/budget/").json()
    assert body["points"] == []
    assert body["window_start"] < body["window_end"]
