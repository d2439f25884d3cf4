"""Liveness and readiness: what each dependency answers and how fast.

Readiness covers every configured dependency (PostgreSQL, Redis, the cache, the broker, the
result store and Elasticsearch when they are elsewhere). Each probe has a short timeout of its
own and they run side by side, so a dependency that hangs (a black-holed host) costs readiness
about TIMEOUT_SECONDS, never a stuck web worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

TIMEOUT_SECONDS = 2


@dataclass
class Probe:
    name: str
    check: Callable[[], str | None]  # returns a detail, raises on failure
    required: bool = True
    # Reads through Django's connection: run in the request's thread once the database
    # answered (a thread of its own would open another connection, outside the request's).
    reads_database: bool = False


def check_database() -> str:
    """On a connection of its own, with a connect and a statement timeout: the request's own
    connection may be a persistent one that a vanished server leaves hanging."""
    import psycopg

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    params["connect_timeout"] = TIMEOUT_SECONDS
    timeout = f"-c statement_timeout={TIMEOUT_SECONDS * 1000}"
    params["options"] = f"{params.get('options', '')} {timeout}".strip()
    with psycopg.connect(**params, autocommit=True) as conn:
        version = conn.execute("SELECT current_setting('server_version')").fetchone()[0]
    return f"PostgreSQL {version}"


def check_migrations() -> str:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied migration(s): {names}")
    return "all applied"


def ping_redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return f"Redis {client.info('server')['redis_version']}"
    finally:
        client.close()


def check_redis() -> str:
    return ping_redis(settings.REDIS_URL)


def check_cache() -> str:
    """The cache's own server (CACHE_URL may name another Redis than REDIS_URL)."""
    location = settings.CACHES["default"]["LOCATION"]
    return ping_redis(location if isinstance(location, str) else location[0])


def check_broker() -> str:
    from noc.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def check_results() -> str:
    """The Celery result store, when CELERY_RESULT_BACKEND names another Redis."""
    url = settings.CELERY_RESULT_BACKEND
    if url.startswith("redis+socket://"):  # kombu's spelling of a unix socket
        parts = urlsplit(url)
        db = parse_qs(parts.query).get("virtual_host", ["0"])[0]
        url = f"unix://{parts.path}?db={db}"
    return ping_redis(url)


def check_elasticsearch() -> str:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(settings.ELASTICSEARCH_URL, request_timeout=TIMEOUT_SECONDS)
    info = client.info()
    return f"Elasticsearch {info['version']['number']}"


# Probes the apps add (observability: the log outbox): callables returning their probes, so
# the project package imports no app.
EXTRA_PROBES: list[Callable[[], list[Probe]]] = []


def probes() -> list[Probe]:
    """The dependencies this installation is configured with, each probed once."""
    found = [Probe("database", check_database), Probe("redis", check_redis)]
    cache = settings.CACHES["default"]
    if cache["BACKEND"].endswith("RedisCache"):
        found.append(Probe("cache", check_cache))
    found.append(Probe("broker", check_broker))
    backend = settings.CELERY_RESULT_BACKEND
    if backend != settings.CELERY_BROKER_URL and backend.startswith(("redis", "rediss", "unix")):
        found.append(Probe("results", check_results))
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


def run_probes(found: list[Probe]) -> dict[str, dict]:
    """All probes at once; one that outlives its timeout (plus a margin) is reported down."""
    pool = ThreadPoolExecutor(max_workers=len(found), thread_name_prefix="probe")
    try:
        futures = {probe.name: pool.submit(_in_thread, probe) for probe in found}
        wait(futures.values(), timeout=TIMEOUT_SECONDS + 1)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    results = {}
    for probe in found:
        future = futures[probe.name]
        results[probe.name] = (
            future.result()
            if future.done()
            else {
                "status": "down",
                "required": probe.required,
                "latency_ms": (TIMEOUT_SECONDS + 1) * 1000,
                "detail": f"no answer within {TIMEOUT_SECONDS + 1}s",
            }
        )
    return results


def _in_thread(probe: Probe) -> dict:
    from django.db import connections

    try:
        return run_probe(probe)
    finally:
        connections.close_all()  # this thread's own connections, if the probe opened any


def readiness() -> dict[str, dict]:
    found = probes()
    results = run_probes([probe for probe in found if not probe.reads_database])
    database_ok = results["database"]["status"] == "ok"
    migrations = Probe("migrations", check_migrations, reads_database=True)
    for probe in [migrations, *(probe for probe in found if probe.reads_database)]:
        results[probe.name] = run_probe(probe) if database_ok else not_checked(probe)
    return results


def not_checked(probe: Probe) -> dict:
    return {
        "status": "down",
        "required": probe.required,
        "latency_ms": 0.0,
        "detail": "not checked: the database is down",
    }


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "time": timezone.now().isoformat()})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    results = readiness()
    healthy = all(r["status"] == "ok" for r in results.values() if r["required"])
    body = {
        "status": "ok" if healthy else "down",
        "checks": results,
        "time": timezone.now().isoformat(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
