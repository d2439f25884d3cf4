"""Every endpoint × every role × its methods: who may and who may not.

Later issues add their endpoints to ENDPOINTS. `minimum` is the least role allowed; anonymous
callers always get 401/403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from accounts.choices import ROLE_RANK, Role


@dataclass
class Endpoint:
    method: str
    url: str | Callable[[], str]
    minimum: str
    payload: Callable[[], dict] = field(default=lambda: {})

    def resolve(self) -> str:
        return self.url() if callable(self.url) else self.url

    def __str__(self) -> str:
        url = self.url if isinstance(self.url, str) else self.url.__name__
        return f"{self.method} {url}"


def _some_user_url() -> str:
    from accounts.models import User

    user = User.objects.create(username="target", email="target@example.test")
    return f"/api/users/{user.pk}/"


def _new_user() -> dict:
    return {"username": "new", "email": "new@example.test", "role": "viewer"}


def _service(**fields):
    from services.actions import service_create

    fields.setdefault("id", "matrix")
    fields.setdefault("name", "Matrix")
    # A closed local port: check-now records a quick "down" without leaving the machine.
    fields.setdefault("url", "http://127.0.0.1:9/")
    fields.setdefault("timeout_seconds", 1)
    return service_create(actor=None, allow_private=True, **fields)


def _service_url() -> str:
    return f"/api/services/{_service().pk}/"


def _service_action(name: str) -> Callable[[], str]:
    def url() -> str:
        return f"{_service_url()}{name}/"

    url.__name__ = f"_service_{name.replace('-', '_')}_url"
    return url


def _new_service() -> dict:
    return {"id": "matrix-new", "name": "New", "url": "https://example.com/"}


def _window_url() -> str:
    from services.models import MaintenanceWindow

    window = MaintenanceWindow.objects.create(name="w", cron="0 0 3 * * *", duration_minutes=5)
    return f"/api/maintenance-windows/{window.pk}/"


def _new_window() -> dict:
    _service(id="matrix-window")
    return {"name": "nightly", "services": ["matrix-window"], "cron": "0 0 3 * * *",
            "duration_minutes": 30}  # fmt: skip


def _incident(status: str = "new"):
    from incidents.actions import incident_create_manual, incident_resolve

    incident = incident_create_manual(
        actor=None, service=_service(id="matrix-incident"), title="Down", severity="high"
    )
    if status == "resolved":
        incident = incident_resolve(incident=incident, actor=None)
    return incident


def _incident_url() -> str:
    return f"/api/incidents/{_incident().pk}/"


def _incident_action(name: str, status: str = "new") -> Callable[[], str]:
    def url() -> str:
        return f"/api/incidents/{_incident(status).pk}/{name}/"

    url.__name__ = f"_incident_{name}_url"
    return url


def _active_incident_url() -> str:
    return f"/api/incidents/active/?service={_incident().service_id}"


def _new_incident() -> dict:
    _service(id="matrix-manual")
    return {"service": "matrix-manual", "title": "Manual", "severity": "low"}


def _slo(evaluated: bool = False):
    from slos.actions import slo_create, slos_evaluate
    from slos.models import SLO

    slo = SLO.objects.filter(pk="matrix-slo").first() or slo_create(
        actor=None, id="matrix-slo", name="Matrix", service=_service(id="matrix-slo-svc"),
        sli_type="availability", target="99.9",
    )  # fmt: skip
    if evaluated:
        slos_evaluate()
    return slo


def _slo_url() -> str:
    return f"/api/slos/{_slo().pk}/"


def _slo_action(name: str, evaluated: bool = False) -> Callable[[], str]:
    def url() -> str:
        return f"/api/slos/{_slo(evaluated).pk}/{name}/"

    url.__name__ = f"_slo_{name}_url"
    return url


def _new_slo() -> dict:
    _service(id="matrix-slo-new")
    return {"id": "matrix-slo-new", "name": "New", "service": "matrix-slo-new",
            "sli_type": "availability", "target": 99.5}  # fmt: skip


def _slo_put() -> dict:
    return {"name": "Put", "service": "matrix-slo-svc", "sli_type": "availability",
            "target": 99.0}  # fmt: skip


def _channel_url() -> str:
    from incidents.models import NotificationChannel

    channel = NotificationChannel.objects.create(
        name="matrix-mail", kind="email", email_to=["ops@example.test"]
    )
    return f"/api/notification-channels/{channel.pk}/"


def _new_channel() -> dict:
    return {"name": "ops-mail", "kind": "email", "email_to": ["ops@example.test"]}


ENDPOINTS = [
    Endpoint("get", "/api/me/", Role.VIEWER),
    Endpoint("get", "/api/users/", Role.ADMIN),
    Endpoint("post", "/api/users/", Role.ADMIN, _new_user),
    Endpoint("get", _some_user_url, Role.ADMIN),
    Endpoint("patch", _some_user_url, Role.ADMIN, lambda: {"first_name": "T"}),
    Endpoint("get", "/api/api-keys/", Role.VIEWER),
    Endpoint("post", "/api/api-keys/", Role.VIEWER, lambda: {"name": "ci"}),
    Endpoint("get", "/api/audit-events/", Role.ADMIN),
    Endpoint("get", "/api/services/", Role.VIEWER),
    Endpoint("post", "/api/services/", Role.ADMIN, _new_service),
    Endpoint("get", _service_url, Role.VIEWER),
    Endpoint("put", _service_url, Role.ADMIN, lambda: {**_new_service(), "name": "Put"}),
    Endpoint("patch", _service_url, Role.ADMIN, lambda: {"name": "Renamed"}),
    Endpoint("delete", _service_url, Role.ADMIN),
    Endpoint("get", _service_action("results"), Role.VIEWER),
    Endpoint("get", _service_action("uptime"), Role.VIEWER),
    Endpoint("post", _service_action("check-now"), Role.OPERATOR),
    Endpoint("post", _service_action("enable"), Role.ADMIN),
    Endpoint("post", _service_action("disable"), Role.ADMIN),
    Endpoint("get", "/api/maintenance-windows/", Role.VIEWER),
    Endpoint("post", "/api/maintenance-windows/", Role.ADMIN, _new_window),
    Endpoint("get", _window_url, Role.VIEWER),
    Endpoint("patch", _window_url, Role.ADMIN, lambda: {"duration_minutes": 45}),
    Endpoint("delete", _window_url, Role.ADMIN),
    Endpoint("get", "/api/incidents/", Role.VIEWER),
    Endpoint("post", "/api/incidents/", Role.ADMIN, _new_incident),
    Endpoint("get", "/api/incidents/stats/", Role.VIEWER),
    Endpoint("get", _active_incident_url, Role.VIEWER),
    Endpoint("get", _incident_url, Role.VIEWER),
    Endpoint("patch", _incident_url, Role.ADMIN, lambda: {"title": "Renamed"}),
    Endpoint("post", _incident_action("acknowledge"), Role.OPERATOR),
    Endpoint("post", _incident_action("assign"), Role.OPERATOR, lambda: {"assignee": None}),
    Endpoint("post", _incident_action("status"), Role.OPERATOR, lambda: {"status": "in_progress"}),
    Endpoint("post", _incident_action("comment"), Role.OPERATOR, lambda: {"message": "on it"}),
    Endpoint("post", _incident_action("resolve"), Role.OPERATOR),
    Endpoint("post", _incident_action("close", "resolved"), Role.OPERATOR),
    Endpoint(
        "post",
        _incident_action("publish"),
        Role.OPERATOR,
        lambda: {"phase": "investigating", "message": "Looking into it"},
    ),
    Endpoint("get", "/api/slos/", Role.VIEWER),
    Endpoint("post", "/api/slos/", Role.ADMIN, _new_slo),
    Endpoint("get", "/api/slos/summary/", Role.VIEWER),
    Endpoint("get", "/api/slos/report/", Role.VIEWER),
    Endpoint("get", "/api/slos/report/?format=csv&period=quarter", Role.VIEWER),
    Endpoint("get", _slo_url, Role.VIEWER),
    Endpoint("put", _slo_url, Role.ADMIN, _slo_put),
    Endpoint("patch", _slo_url, Role.ADMIN, lambda: {"name": "Renamed"}),
    Endpoint("delete", _slo_url, Role.ADMIN),
    Endpoint("get", _slo_action("status", evaluated=True), Role.VIEWER),
    Endpoint("get", _slo_action("history"), Role.VIEWER),
    Endpoint("get", _slo_action("budget"), Role.VIEWER),
    Endpoint("get", _slo_action("alerts"), Role.VIEWER),
]
ENDPOINTS += [
    Endpoint("get", "/api/notification-channels/", Role.ADMIN),
    Endpoint("post", "/api/notification-channels/", Role.ADMIN, _new_channel),
    Endpoint("get", _channel_url, Role.ADMIN),
    Endpoint("patch", _channel_url, Role.ADMIN, lambda: {"enabled": False}),
    Endpoint("delete", _channel_url, Role.ADMIN),
    Endpoint("get", "/api/notification-deliveries/", Role.OPERATOR),
]


def _application(slug: str = "matrix-app"):
    from observability.actions import application_create
    from observability.models import Application

    found = Application.objects.filter(slug=slug).first()
    return found or application_create(actor=None, slug=slug, name="Matrix")[0]


def _application_url() -> str:
    return f"/api/applications/{_application().slug}/"


def _ingest_key_url() -> str:
    return f"/api/ingest-keys/{_application().ingest_keys.get().pk}/"


def _ingest_key_revoke_url() -> str:
    return f"{_ingest_key_url()}revoke/"


def _points() -> dict:
    _application()
    return {"application": "matrix-app", "points": [{"name": "matrix_up", "value": 1}]}


def _otlp_logs() -> dict:
    _application()
    record = {"body": {"stringValue": "matrix line"}}
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def _otlp_metrics() -> dict:
    _application()
    gauge = {"dataPoints": [{"asDouble": 1}]}
    return {
        "resourceMetrics": [
            {"scopeMetrics": [{"metrics": [{"name": "matrix_up", "gauge": gauge}]}]}
        ]
    }


def _metric_query_url() -> str:
    from observability.actions import metric_points_ingest
    from observability.points import MetricPoint

    metric_points_ingest(application=_application(), points=[MetricPoint("matrix_up", {}, 1.0)])
    return "/api/metrics/query?name=matrix_up&from=-5m"


def _log_lines() -> dict:
    _application()
    return {"application": "matrix-app", "logs": [{"message": "matrix line"}]}


def _otlp_spans() -> dict:
    import time

    _application()
    now = time.time_ns()
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "matrix",
        "startTimeUnixNano": str(now - 1000),
        "endTimeUnixNano": str(now),
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def _trace_url() -> str:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from observability.actions import spans_otlp_ingest
    from observability.otlp.logs import JSON, parse

    request = parse(json.dumps(_otlp_spans()).encode(), JSON, ExportTraceServiceRequest())
    spans_otlp_ingest(application=_application(), request=request)
    return "/api/traces/0af7651916cd43dd8448eb211c80319c/"


ENDPOINTS += [
    Endpoint("get", "/api/applications/", Role.VIEWER),
    Endpoint("post", "/api/applications/", Role.ADMIN, lambda: {"slug": "new-app", "name": "N"}),
    Endpoint("get", _application_url, Role.VIEWER),
    Endpoint("put", _application_url, Role.ADMIN, lambda: {"slug": "matrix-app", "name": "P"}),
    Endpoint("patch", _application_url, Role.ADMIN, lambda: {"owner": "team-a"}),
    Endpoint("delete", _application_url, Role.ADMIN),
    Endpoint("get", "/api/ingest-keys/", Role.VIEWER),
    Endpoint("post", "/api/ingest-keys/", Role.ADMIN,
             lambda: {"application": _application().slug, "name": "ci"}),
    Endpoint("get", _ingest_key_url, Role.VIEWER),
    Endpoint("delete", _ingest_key_url, Role.ADMIN),
    Endpoint("post", _ingest_key_revoke_url, Role.ADMIN),
    Endpoint("post", "/api/metrics/ingest", Role.OPERATOR, _points),
    Endpoint("post", "/api/logs/ingest", Role.OPERATOR, _log_lines),
    Endpoint("get", "/api/logs/search?q=matrix", Role.VIEWER),
    Endpoint("post", "/v1/logs?application=matrix-app", Role.OPERATOR, _otlp_logs),
    Endpoint("post", "/v1/metrics?application=matrix-app", Role.OPERATOR, _otlp_metrics),
    Endpoint("get", "/api/metrics/", Role.VIEWER),
    Endpoint("get", _metric_query_url, Role.VIEWER),
    Endpoint("get", "/api/metrics/series?prefix=matrix", Role.VIEWER),
    Endpoint("post", "/v1/traces?application=matrix-app", Role.OPERATOR, _otlp_spans),
    Endpoint("get", "/api/traces/", Role.VIEWER),
    Endpoint("get", _trace_url, Role.VIEWER),
]  # fmt: skip


def _alert_rule(name: str = "matrix-rule"):
    from observability.actions import alert_rule_create
    from observability.models import AlertRule

    return AlertRule.objects.filter(name=name).first() or alert_rule_create(
        actor=None, name=name, metric="matrix_up", aggregation="last", condition="lt",
        threshold=1,
    )  # fmt: skip


def _alert_rule_url() -> str:
    return f"/api/alert-rules/{_alert_rule().pk}/"


def _new_alert_rule() -> dict:
    return {"name": "matrix-new-rule", "metric": "matrix_up", "aggregation": "avg",
            "condition": "lt", "threshold": 1}  # fmt: skip


def _alert_url() -> str:
    from django.utils import timezone

    from observability.models import Alert

    now = timezone.now()
    alert = Alert.objects.create(
        rule=_alert_rule(), fingerprint="matrix", status="active", severity="medium",
        started_at=now, fired_at=now, last_evaluated_at=now,
    )  # fmt: skip
    return f"/api/alerts/{alert.pk}/"


def _alert_action(name: str) -> Callable[[], str]:
    def url() -> str:
        return f"{_alert_url()}{name}/"

    url.__name__ = f"_alert_{name}_url"
    return url


ENDPOINTS += [
    Endpoint("get", "/api/alert-rules/", Role.VIEWER),
    Endpoint("post", "/api/alert-rules/", Role.ADMIN, _new_alert_rule),
    Endpoint("get", _alert_rule_url, Role.VIEWER),
    Endpoint("put", _alert_rule_url, Role.ADMIN, lambda: {**_new_alert_rule(), "name": "put"}),
    Endpoint("patch", _alert_rule_url, Role.ADMIN, lambda: {"threshold": 2}),
    Endpoint("delete", _alert_rule_url, Role.ADMIN),
    Endpoint("get", "/api/alerts/", Role.VIEWER),
    Endpoint("get", _alert_url, Role.VIEWER),
    Endpoint("post", _alert_action("acknowledge"), Role.OPERATOR),
    Endpoint("post", _alert_action("silence"), Role.OPERATOR, lambda: {"minutes": 10}),
]


def _collector(name: str = "matrix-collector"):
    from collectors.actions import collector_create
    from collectors.models import Collector

    return Collector.objects.filter(name=name).first() or collector_create(
        actor=None, name=name, kind="prometheus", application=_application(),
        url="http://127.0.0.1:9/metrics", allow_private=True,
    )  # fmt: skip


def _collector_url() -> str:
    return f"/api/collectors/{_collector().pk}/"


def _new_collector() -> dict:
    _application()
    return {"name": "matrix-new-collector", "kind": "prometheus", "application": "matrix-app",
            "url": "http://127.0.0.1:9/metrics", "allow_private": True}  # fmt: skip


def _collector_run_url() -> str:
    from collectors.models import CollectorRun

    return f"/api/collectors/runs/{CollectorRun.objects.create(collector=_collector()).pk}/"


def _start_collector() -> dict:
    return {"collector": _collector().pk}


def _stop_collector() -> dict:
    from collectors.models import CollectorRun

    return {"id": CollectorRun.objects.create(collector=_collector()).pk}


ENDPOINTS += [
    Endpoint("get", "/api/collectors/", Role.VIEWER),
    Endpoint("post", "/api/collectors/", Role.ADMIN, _new_collector),
    Endpoint("get", _collector_url, Role.VIEWER),
    Endpoint("put", _collector_url, Role.ADMIN, lambda: {**_new_collector(), "name": "put"}),
    Endpoint("patch", _collector_url, Role.ADMIN, lambda: {"interval_seconds": 30}),
    Endpoint("delete", _collector_url, Role.ADMIN),
    Endpoint("get", "/api/collectors/runs/", Role.VIEWER),
    Endpoint("get", _collector_run_url, Role.VIEWER),
    Endpoint("get", "/api/collectors/status", Role.VIEWER),
    Endpoint("post", "/api/collectors/start", Role.OPERATOR, _start_collector),
    Endpoint("post", "/api/collectors/stop", Role.OPERATOR, _stop_collector),
]

ROLES = [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_role_matrix(client_as, endpoint: Endpoint, role: str | None) -> None:
    client = client_as(role)
    response = getattr(client, endpoint.method)(
        endpoint.resolve(), endpoint.payload(), format="json"
    )
    if role is None:
        assert response.status_code in (401, 403), response.content
    elif ROLE_RANK[role] >= ROLE_RANK[endpoint.minimum]:
        assert response.status_code < 400, (response.status_code, response.content)
    else:
        assert response.status_code == 403, response.content
        assert endpoint.minimum in response.json()["message"]


# --- the console's pages (web/): the same roles, as a browser meets them --------------------------
# Anonymous visitors are sent to the login page (302) instead of a 401; a role below the
# minimum is a 403; an allowed POST redirects back to its page. `None` as minimum: public.


def _page_service() -> str:
    return f"/services/{_service(id='matrix-page').pk}/"


def _page_service_action(name: str) -> Callable[[], str]:
    def url() -> str:
        return f"{_page_service()}{name}/"

    url.__name__ = f"_page_service_{name.replace('-', '_')}_url"
    return url


def _page_incident(action: str = "", status: str = "new") -> Callable[[], str]:
    def url() -> str:
        return f"/incidents/{_incident(status).pk}/" + (f"{action}/" if action else "")

    url.__name__ = f"_page_incident_{action or 'detail'}_url"
    return url


def _page_slo() -> str:
    return f"/slos/{_slo().pk}/"


def _public_badge(kind: str) -> Callable[[], str]:
    def url() -> str:
        service = _service(id="matrix-public")
        return f"/status/badge/{service.pk}" + ("/uptime.svg" if kind == "uptime" else ".svg")

    url.__name__ = f"_public_{kind}_badge_url"
    return url


def _public_status_page(path: str) -> Callable[[], str]:
    def url() -> str:
        _service(id="matrix-public")  # the page is off while nothing is public
        return path

    url.__name__ = f"_public_{path.strip('/').replace('/', '_').replace('.', '_')}_url"
    return url


PAGES = [
    Endpoint("get", "/", Role.VIEWER),
    Endpoint("get", "/?parts=1", Role.VIEWER),
    Endpoint("get", _page_service, Role.VIEWER),
    Endpoint("post", _page_service_action("check-now"), Role.OPERATOR),
    Endpoint("post", _page_service_action("pause"), Role.ADMIN),
    Endpoint("post", _page_service_action("resume"), Role.ADMIN),
    Endpoint("get", _page_incident(), Role.VIEWER),
    Endpoint("post", _page_incident("acknowledge"), Role.OPERATOR),
    Endpoint("post", _page_incident("assign"), Role.OPERATOR, lambda: {"assignee": ""}),
    Endpoint("post", _page_incident("status"), Role.OPERATOR, lambda: {"status": "in_progress"}),
    Endpoint("post", _page_incident("comment"), Role.OPERATOR, lambda: {"message": "on it"}),
    Endpoint("post", _page_incident("resolve"), Role.OPERATOR),
    Endpoint("post", _page_incident("close", "resolved"), Role.OPERATOR),
    Endpoint(
        "post",
        _page_incident("publish"),
        Role.OPERATOR,
        lambda: {"phase": "identified", "message": "Found it"},
    ),
    Endpoint("get", _page_slo, Role.VIEWER),
    Endpoint("get", _public_status_page("/status/"), None),
    Endpoint("get", _public_status_page("/status/feed.json"), None),
    Endpoint("get", _public_badge("status"), None),
    Endpoint("get", _public_badge("uptime"), None),
    Endpoint("get", "/favicon.ico", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", PAGES, ids=str)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_page_role_matrix(client, make_user, endpoint: Endpoint, role: str | None) -> None:
    if role is not None:
        client.force_login(make_user(role))
    response = getattr(client, endpoint.method)(endpoint.resolve(), endpoint.payload())
    if endpoint.minimum is None:
        assert response.status_code == 200, response.status_code
    elif role is None:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    elif ROLE_RANK[role] >= ROLE_RANK[endpoint.minimum]:
        assert response.status_code < 400, response.status_code
    else:
        assert response.status_code == 403
