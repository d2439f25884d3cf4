"""Settings read from the environment: DATABASE_URL options, production refusals, check --deploy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.exceptions import ImproperlyConfigured

from noc.settings import (
    BASE_DIR,
    _cache_url_from,
    _celery_redis_url,
    _database_from_url,
    _pool_settings,
    _redis_with_db,
)


def test_database_url_options_people_use_reach_libpq():
    config = _database_from_url(
        "postgres://noc:pw@db.example:6543/noc?sslmode=require&application_name=noc-web"
        "&connect_timeout=5&statement_timeout=30000"
    )
    assert config["HOST"] == "db.example"
    assert config["PORT"] == 6543
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["OPTIONS"]["application_name"] == "noc-web"
    assert config["OPTIONS"]["connect_timeout"] == 5
    assert config["OPTIONS"]["options"] == "-c statement_timeout=30000"
    assert "statement_timeout" not in config["OPTIONS"]


def test_a_malformed_statement_timeout_is_refused():
    with pytest.raises(ImproperlyConfigured, match="statement_timeout"):
        _database_from_url("postgres://noc@db/noc?statement_timeout=soon")


def test_unix_socket_urls_for_the_embedded_servers():
    config = _database_from_url("postgresql://postgres:@/noc?host=/work/var/pgdata")
    assert config["HOST"] == "/work/var/pgdata"
    assert config["NAME"] == "noc"
    sock = "unix:///work/var/redis/redis.sock?db=0"
    assert _celery_redis_url(sock) == "redis+socket:///work/var/redis/redis.sock?virtual_host=0"
    assert _redis_with_db(sock, 1) == "unix:///work/var/redis/redis.sock?db=1"
    assert _redis_with_db("redis://127.0.0.1:6379/0", 1) == "redis://127.0.0.1:6379/1"


@pytest.mark.parametrize(
    ("redis_url", "cache_url"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/1"),
        ("rediss://:secret@redis.example:6380/2", "rediss://:secret@redis.example:6380/3"),
        ("unix:///run/redis.sock?db=7", "unix:///run/redis.sock?db=8"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock?db=1"),
    ],
)
def test_the_cache_uses_the_database_after_the_one_redis_url_names(redis_url, cache_url):
    assert _cache_url_from(redis_url) == cache_url


def test_a_redis_url_on_the_last_database_asks_for_a_cache_url():
    with pytest.raises(ImproperlyConfigured, match="set CACHE_URL"):
        _cache_url_from("redis://127.0.0.1:6379/15")


def pool_of(url: str, *, max_size=None, min_size=None, timeout=None):
    config = _database_from_url(url)
    return _pool_settings(
        config["OPTIONS"].pop("pool", {}), max_size=max_size, min_size=min_size, timeout=timeout
    )


def test_the_seeds_pool_options_are_aliases_of_the_pool_variables():
    url = "postgresql://user:pass@host:5432/db?sslmode=require&pool_min=5&pool_max=20"
    config = _database_from_url(url)
    assert "pool_min" not in config["OPTIONS"] and "pool_max" not in config["OPTIONS"]
    assert config["OPTIONS"]["sslmode"] == "require"
    assert pool_of(url) == {"min_size": 5, "max_size": 20, "timeout": 10.0}
    # pool_idle is milliseconds in the seed; psycopg_pool's max_idle is seconds.
    idle = pool_of("postgres://u@h/db?pool_max=50&pool_idle=60000")
    assert idle == {"max_size": 50, "min_size": 1, "max_idle": 60.0, "timeout": 10.0}
    assert pool_of("postgres://u@h/db?pool_min=3") == {"min_size": 3, "max_size": 3, "timeout": 10}
    assert pool_of("postgres://u@h/db", max_size=8, min_size=2, timeout=3.0) == {
        "max_size": 8, "min_size": 2, "timeout": 3.0,
    }  # fmt: skip
    assert pool_of("postgres://u@h/db?pool_max=20", max_size=20) == pool_of(
        "postgres://u@h/db?pool_max=20"
    )
    assert pool_of("postgres://u@h/db") is None
    assert pool_of("postgres://u@h/db", max_size=0, min_size=4) is None


@pytest.mark.parametrize(
    ("url", "variables", "message"),
    [
        ("postgres://u@h/db?pool_size=5", {}, "'pool_size' is not a PostgreSQL connection"),
        ("postgres://u@h/db?pool_max=lots", {}, "pool_max must be a whole number"),
        ("postgres://u@h/db?pool_max=20", {"max_size": 10}, "pool_max=20 contradicts DB_POOL_MAX"),
        ("postgres://u@h/db?pool_min=5", {"min_size": 1}, "pool_min=5 contradicts DB_POOL_MIN"),
        ("postgres://u@h/db?pool_min=30&pool_max=20", {}, "min size (30) <= max size (20)"),
        ("postgres://u@h/db?pool_idle=1000", {}, "pool_idle needs a pool"),
    ],
)
def test_pool_options_that_cannot_work_are_refused_naming_the_variables(url, variables, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        pool_of(url, **variables)


def test_a_database_url_with_the_seeds_pool_options_starts_and_connects():
    url = urlsplit(os.environ["DATABASE_URL"])
    query = "&".join(filter(None, [url.query, "pool_min=1&pool_max=2"]))
    code = (
        "from django.db import connection; connection.ensure_connection(); "
        "cursor = connection.cursor(); cursor.execute('SELECT 1'); "
        "print(cursor.fetchone()[0], connection.pool.min_size, connection.pool.max_size)"
    )
    result = run_django(code, DATABASE_URL=urlunsplit(url._replace(query=query)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "2"]


def test_an_unknown_pool_option_stops_the_start_with_the_right_variables():
    result = run_django("", DATABASE_URL="postgres://u@127.0.0.1/db?pool_size=5")
    assert result.returncode != 0
    assert "DB_POOL_MAX_SIZE, DB_POOL_MIN_SIZE and DB_POOL_TIMEOUT" in result.stderr


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")} | env
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env=environment | {"DJANGO_SETTINGS_MODULE": "noc.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=env | {"NOC_ENV": "production", "DJANGO_SETTINGS_MODULE": "noc.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when NOC_ENV=production" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=os.environ
        | {
            "NOC_ENV": "production",
            "SECRET_KEY": "x" * 64 + "-production-like-secret-for-the-test",
            "NOC_METRICS_TOKEN": "a-scrape-token-for-the-test",
            "ALLOWED_HOSTS": "noc.example.com",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_unknown_noc_env_is_refused():
    result = run_django("", NOC_ENV="staging")
    assert result.returncode != 0
    assert "NOC_ENV must be development, production or test" in result.stderr


PRODUCTION = {"NOC_ENV": "production", "SECRET_KEY": "k" * 60, "ALLOWED_HOSTS": "noc.example"}


def test_production_refuses_to_start_with_metrics_open_to_anyone():
    result = run_django("", **PRODUCTION)
    assert result.returncode != 0
    assert "NOC_METRICS_TOKEN must be set when NOC_ENV=production" in result.stderr
    assert "NOC_METRICS_ENABLED=false" in result.stderr
    short = run_django("", **PRODUCTION, NOC_METRICS_TOKEN="s3cret")
    assert short.returncode != 0
    assert "at least 16 characters" in short.stderr


def test_production_starts_with_a_metrics_token_or_without_metrics():
    code = "from django.conf import settings; print(settings.NOC_METRICS_ENABLED)"
    with_token = run_django(code, **PRODUCTION, NOC_METRICS_TOKEN="t" * 32)
    assert with_token.returncode == 0, with_token.stderr
    assert with_token.stdout.split()[-1] == "True"
    switched_off = run_django(code, **PRODUCTION, NOC_METRICS_ENABLED="false")
    assert switched_off.returncode == 0, switched_off.stderr
    assert switched_off.stdout.split()[-1] == "False"
