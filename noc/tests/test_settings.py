"""Settings read from the environment: DATABASE_URL options, production refusals, check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from noc.settings import BASE_DIR, _celery_redis_url, _database_from_url, _redis_with_db


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
