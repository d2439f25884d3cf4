"""Liveness and readiness: what each dependency answers and how fast."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

TIMEOUT_SECONDS = 3


@dataclass
class Probe:
    name: str
    check: Callable[[], str | None]  # returns a detail, raises on failure
    required: bool = True


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def check_migrations() -> str:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied migration(s): {names}")
    return "all applied"


def check_redis() -> str:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return f"Redis {client.info('server')['redis_version']}"
    finally:
        client.close()


def check_broker() -> str:
    from noc.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def check_elasticsearch() -> str:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(settings.ELASTICSEARCH_URL, request_timeout=TIMEOUT_SECONDS)
    info = client.info()
    return f"Elasticsearch {info['version']['number']}"


# Probes the apps add (observability: the log outbox): callables returning their probes, so
# the project package imports no app.
EXTRA_PROBES: list[Callable[[], list[Probe]]] = []


def probes() -> list[Probe]:
    found = [
        Probe("database", check_database),
        Probe("migrations", check_migrations),
        Probe("redis", check_redis),
        Probe("broker", check_broker),
    ]
    if settings.ELASTICSEARCH_URL:
        # Logs wait in the outbox while Elasticsearch is away: the stack degrades, it stays up.
        found.append(Probe("elasticsearch", check_elasticsearch, required=False))
    for extra in EXTRA_PROBES:
        found += extra()
    return found


def run_probe(probe: Probe) -> dict:
    started = time.perf_counter()
    try:
        detail, ok = probe.check(), True
    except Exception as exc:  # a probe reports any failure, it never raises
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return {
        "status": "ok" if ok else "down",
        "required": probe.required,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "detail": detail,
    }


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "time": timezone.now().isoformat()})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    results = {probe.name: run_probe(probe) for probe in probes()}
    healthy = all(r["status"] == "ok" for r in results.values() if r["required"])
    body = {
        "status": "ok" if healthy else "down",
        "checks": results,
        "time": timezone.now().isoformat(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
