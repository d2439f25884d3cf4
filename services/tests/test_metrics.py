"""GET /metrics: Prometheus text format 0.0.4, per-service gauges, auth and the off switch."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from noc.models import RollupWatermark
from services.metrics import escape_label, format_labels, format_value
from services.models import CheckClaim, CheckResult, Service
from services.tests.fixtures import refresh_rollups

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})?'
    r" (?P<value>NaN|[+-]Inf|-?[0-9.eE+-]+)$"
)
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name; fails on any line that is not valid exposition format."""
    assert text.endswith("\n")
    families: dict[str, list] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter"), line
            typed.add(name)
            families.setdefault(name, [])
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        assert match["name"] in typed, f"sample before its TYPE: {line!r}"
        labels = dict(LABEL.findall(match["labels"] or ""))
        families[match["name"]].append((labels, float(match["value"])))
    return families


def value(families, name: str, **labels: str) -> float:
    [found] = [v for lbl, v in families[name] if all(lbl.get(k) == x for k, x in labels.items())]
    return found


@pytest.fixture
def scrape(client):
    def get(**headers) -> dict:
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse(response.content.decode())

    return get


def record(service_id: str, minutes_ago: float, status: str = "up", **fields) -> None:
    CheckResult.objects.create(
        service_id=service_id,
        time=timezone.now() - timedelta(minutes=minutes_ago),
        status=status,
        **fields,
    )


def test_service_gauges(scrape, make_service):
    make_service(id="api")
    make_service(id="db", kind="tcp", host="127.0.0.1", port=5432)
    make_service(id="new")
    Service.objects.filter(id="api").update(status="degraded", last_response_time_ms=123.5)
    Service.objects.filter(id="db").update(status="down")

    families = scrape()

    assert value(families, "noc_service_up", service="api", kind="http") == 1
    assert value(families, "noc_service_up", service="db", kind="tcp") == 0
    assert math.isnan(value(families, "noc_service_up", service="new"))
    assert value(families, "noc_service_status", service="db", status="down") == 1
    assert sum(v for lbl, v in families["noc_service_status"] if lbl["service"] == "db") == 1
    assert value(families, "noc_service_response_time_ms", service="api") == 123.5
    assert [lbl["service"] for lbl, _ in families["noc_service_response_time_ms"]] == ["api"]


def test_uptime_ratio_comes_from_the_rollups(scrape, make_service):
    make_service(id="api")
    make_service(id="quiet")
    for minutes, status in enumerate(["up", "up", "up", "down"], start=2):
        record("api", minutes, status)
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": timezone.now() - timedelta(hours=2)}
    )
    refresh_rollups("services_checkrollup")

    families = scrape()

    assert value(families, "noc_service_uptime_ratio", service="api", window="24h") == 0.75
    assert [lbl["service"] for lbl, _ in families["noc_service_uptime_ratio"]] == ["api"]


def test_cert_days_come_from_the_last_result(scrape, make_service):
    make_service(id="site")
    make_service(id="plain")
    record("site", 10, details={"cert_days_left": 90})
    record("site", 1, details={"cert_days_left": 29, "address": "127.0.0.1"})
    record("plain", 1, details={"address": "127.0.0.1"})

    families = scrape()

    assert families["noc_service_cert_days_remaining"] == [({"service": "site"}, 29.0)]


def test_check_lag_and_pending_claims(scrape, make_service):
    late = make_service(id="late")
    make_service(id="beat", kind="push")
    Service.objects.filter(id="late").update(next_check_at=timezone.now() - timedelta(seconds=30))
    Service.objects.filter(id="beat").update(next_check_at=timezone.now() - timedelta(hours=1))
    CheckClaim.objects.create(
        service=late, slot=timezone.now(), lease_until=timezone.now() + timedelta(minutes=1)
    )

    families = scrape()

    assert 30 <= value(families, "noc_check_lag_seconds") < 60
    assert value(families, "noc_check_claims_pending") == 1


def test_no_lag_when_nothing_is_due(scrape, make_service):
    make_service(id="api")
    Service.objects.update(next_check_at=timezone.now() + timedelta(minutes=1))
    assert value(scrape(), "noc_check_lag_seconds") == 0


def test_process_metrics(scrape):
    families = scrape()
    assert value(families, "process_resident_memory_bytes") > 1_000_000
    assert value(families, "process_cpu_seconds_total") > 0
    start = value(families, "process_start_time_seconds")
    assert start <= timezone.now().timestamp()


def test_label_values_are_escaped():
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    labels = format_labels({"name": 'say "hi"', "path": "C:\\x", "note": "two\nlines"})
    assert labels == '{name="say \\"hi\\"",path="C:\\\\x",note="two\\nlines"}'
    assert SAMPLE.match(f"m{labels} 1")
    assert "\n" not in labels


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (1, "1"),
        (0.75, "0.75"),
        (2.0, "2"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-1e-9, "-1e-09"),
    ],
)
def test_values_are_formatted_for_prometheus(raw, text):
    assert format_value(raw) == text


def test_a_token_is_required_when_set(client, settings):
    settings.NOC_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    assert b"noc_service_up" in right.content


def test_metrics_can_be_switched_off(client, settings):
    settings.NOC_METRICS_ENABLED = False
    assert client.get("/metrics").status_code == 404


def test_a_scrape_costs_the_same_queries_for_any_fleet_size(
    client, make_service, django_assert_max_num_queries
):
    for _ in range(30):
        make_service()
    with django_assert_max_num_queries(6):
        assert client.get("/metrics").status_code == 200


def test_the_page_is_prometheus_clients_exposition_that_its_parser_reads(client, make_service):
    from prometheus_client.parser import text_string_to_metric_families

    make_service(id="api")
    body = client.get("/metrics").content.decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert families["noc_service_up"].type == "gauge"
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_cpu_seconds"].samples[0].name == "process_cpu_seconds_total"


def test_a_scraper_asking_for_openmetrics_gets_it(client, make_service):
    make_service(id="api")
    response = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = response.content.decode()
    assert body.endswith("# EOF\n")
    assert 'noc_service_up{kind="http",service="api"}' in body
    # Anything else (Prometheus' usual Accept included) gets the text format 0.0.4.
    plain = client.get("/metrics", headers={"Accept": "text/plain;q=0.5,*/*;q=0.1"})
    assert plain["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
