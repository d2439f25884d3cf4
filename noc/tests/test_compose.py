"""docker-compose.yml and the Dockerfile run the processes of `make run` against real servers."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.urls import resolve

from noc.celery import JOB_QUEUES, QUEUES, SCHEDULED_QUEUES
from noc.runner import Runner
from noc.tests.test_env_documented import documented_names

BASE_DIR = Path(__file__).resolve().parents[2]
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
DOCKERFILE = BASE_DIR / "Dockerfile"
APP_SERVICES = ("migrate", "web", "worker", "jobs", "beat")
LONG_RUNNING = ("web", "worker", "jobs", "beat")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ escapes a dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return compose()["services"]


def argv(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def interpolate(value: str) -> str:
    """What compose substitutes when none of the variables is set (`:?` ones get a stand-in)."""

    def substitute(match: re.Match) -> str:
        name, operator, word = match.groups()
        if operator in {":-", "-"}:
            return word
        if operator in {":?", "?"}:
            return f"compose-test-{name.lower()}"
        return ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def option(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


# --- One image, three processes ------------------------------------------------------------


def test_app_services_are_built_from_the_one_dockerfile() -> None:
    found = services()
    builds = {json.dumps(found[name].get("build"), sort_keys=True) for name in APP_SERVICES}
    images = {found[name].get("image") for name in APP_SERVICES}

    assert len(builds) == 1 and found["web"].get("build"), builds
    assert len(images) == 1, images
    build = found["web"]["build"]
    context = BASE_DIR / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).resolve() == DOCKERFILE


def test_the_two_workers_consume_the_celery_queues_as_make_run_splits_them() -> None:
    found = services()
    worker, jobs = argv(found["worker"]), argv(found["jobs"])

    assert worker[:4] == jobs[:4] == ["celery", "-A", "noc", "worker"]
    assert tuple(option(worker, "-Q").split(",")) == SCHEDULED_QUEUES
    assert tuple(option(jobs, "-Q").split(",")) == JOB_QUEUES
    assert set(SCHEDULED_QUEUES) | set(JOB_QUEUES) == set(QUEUES)
    runner = {c.name: c.argv for c in Runner(host="127.0.0.1", port=8000).plan()}
    for name, args in (("worker", worker), ("jobs", jobs)):
        assert option(runner[name], "-Q") == option(args, "-Q"), name


def test_web_runs_uvicorn_on_noc_asgi() -> None:
    args = argv(services()["web"])

    assert args[:2] == ["uvicorn", "noc.asgi:application"]
    assert (option(args, "--host"), option(args, "--port")) == ("0.0.0.0", "8000")


def test_beat_runs_celery_beat() -> None:
    assert argv(services()["beat"])[:4] == ["celery", "-A", "noc", "beat"]


def test_migrate_applies_migrations_then_syncs_the_beat_schedule() -> None:
    script = " ".join(argv(services()["migrate"]))

    assert re.search(r"manage\.py migrate\b.*&&.*manage\.py sync_beat\b", script), script
    assert services()["migrate"].get("restart", "no") == "no"


def test_long_running_processes_start_after_a_successful_migrate() -> None:
    for name in LONG_RUNNING:
        depends_on = services()[name].get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        assert depends_on.get("migrate", {}).get("condition") == "service_completed_successfully"


def test_web_healthcheck_calls_the_liveness_endpoint() -> None:
    web = services()["web"]
    test = web["healthcheck"]["test"]
    command = test if isinstance(test, str) else " ".join(test)
    match = re.search(r"http://([^/:'\"]+):(\d+)(/[^'\" ]*)", command)

    assert match, command
    host, port, path = match.groups()
    assert port == "8000"
    assert resolve(path).url_name == "health-live"
    # Django answers 400 to a Host it does not allow, and the check would never pass.
    allowed = interpolate(environment(web)["ALLOWED_HOSTS"]).split(",")
    assert host in allowed


# --- Dependencies -------------------------------------------------------------------------


def test_every_dependency_waits_on_a_condition() -> None:
    found = services()
    for name, service in found.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: list form of depends_on has no condition"
        for target, spec in depends_on.items():
            assert target in found, f"{name} depends on unknown service {target}"
            condition = (spec or {}).get("condition")
            assert condition in {"service_healthy", "service_completed_successfully"}, (
                f"{name} -> {target}: condition {condition!r}"
            )
            if condition == "service_healthy":
                assert found[target].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )


def test_app_urls_point_at_the_compose_services() -> None:
    found = services()
    expected = {
        "DATABASE_URL": ("db", 5432, {"postgres", "postgresql"}),
        "REDIS_URL": ("redis", 6379, {"redis"}),
        "ELASTICSEARCH_URL": ("elasticsearch", 9200, {"http"}),
    }
    for name in APP_SERVICES:
        env = environment(found[name])
        for variable, (host, port, schemes) in expected.items():
            url = urlsplit(interpolate(env[variable]))
            assert (url.hostname, url.port) == (host, port), f"{name}: {variable}"
            assert url.scheme in schemes, f"{name}: {variable}"
            assert host in found


def test_database_is_timescaledb_and_the_app_uses_it() -> None:
    found = services()

    assert found["db"]["image"].startswith("timescale/timescaledb:")
    for name in APP_SERVICES:
        assert environment(found[name])["NOC_TIMESERIES"] == "timescale"


def test_app_database_credentials_match_the_database_service() -> None:
    db_env = environment(services()["db"])
    url = urlsplit(interpolate(environment(services()["web"])["DATABASE_URL"]))

    assert url.username == interpolate(db_env["POSTGRES_USER"])
    assert url.password == interpolate(db_env["POSTGRES_PASSWORD"])
    assert url.path.lstrip("/") == interpolate(db_env["POSTGRES_DB"])


def test_database_and_elasticsearch_keep_their_data_in_named_volumes() -> None:
    config = compose()
    declared = set(config.get("volumes") or {})
    mounts = {
        "db": "/var/lib/postgresql/data",
        "elasticsearch": "/usr/share/elasticsearch/data",
    }
    for name, target in mounts.items():
        volumes = config["services"][name].get("volumes") or []
        sources = {v.split(":")[0] for v in volumes if v.split(":")[1] == target}
        assert sources & declared, f"{name} keeps {target} in no named volume"


# --- Environment --------------------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_sets_only_variables_the_project_reads(name: str) -> None:
    unknown = set(environment(services()[name])) - set(documented_names())

    assert not unknown, f"{name} sets variables NOC does not read: {sorted(unknown)}"


def test_variables_substituted_into_compose_are_documented() -> None:
    substituted = {m.group(1) for m in INTERPOLATION.finditer(COMPOSE_FILE.read_text())}

    assert substituted, "the pattern finds nothing: it is broken"
    assert not substituted - set(documented_names())


def test_app_runs_in_production_mode_over_plain_http() -> None:
    for name in APP_SERVICES:
        env = environment(services()[name])
        assert env["NOC_ENV"] == "production"
        assert env["SECURE_SSL_REDIRECT"] == "false"
        assert "SECRET_KEY" in env


def test_settings_load_from_the_compose_environment() -> None:
    """The compose values parse (booleans, lists, URLs) and leave a secure production config."""
    env = {name: interpolate(value) for name, value in environment(services()["web"]).items()}
    script = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'debug': s.DEBUG, 'redirect': s.SECURE_SSL_REDIRECT, "
        "'hosts': s.ALLOWED_HOSTS, 'db_host': s.DATABASES['default']['HOST'], "
        "'es': s.ELASTICSEARCH_URL}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "noc.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["debug"] is False
    assert loaded["redirect"] is False
    assert loaded["db_host"] == "db"
    assert loaded["es"] == "http://elasticsearch:9200"
    assert "localhost" in loaded["hosts"]


# --- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_installs_the_lock_with_hashes() -> None:
    runs = [args for instruction, args in dockerfile_instructions() if instruction == "RUN"]
    installs = [r for r in runs if re.search(r"\b(pip|uv pip) (install|sync)\b", r)]

    assert installs, "no pip/uv install in the Dockerfile"
    for command in installs:
        assert "--require-hashes" in command
        assert re.search(r"requirements\.lock\b", command)
    copies = [args for instruction, args in dockerfile_instructions() if instruction == "COPY"]
    assert any("requirements.lock" in c for c in copies)


def test_dockerfile_builds_a_non_root_web_image() -> None:
    instructions = dockerfile_instructions()
    base = next(args for instruction, args in instructions if instruction == "FROM")
    users = [args for instruction, args in instructions if instruction == "USER"]
    cmd = json.loads(next(args for instruction, args in instructions if instruction == "CMD"))

    assert base.startswith("python:3.11-slim")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", "8000") in instructions
    assert cmd[:2] == ["uvicorn", "noc.asgi:application"]
    assert (option(cmd, "--host"), option(cmd, "--port")) == ("0.0.0.0", "8000")


def test_dockerfile_collects_static_files_without_real_secrets() -> None:
    collect = next(
        args
        for instruction, args in dockerfile_instructions()
        if instruction == "RUN" and "collectstatic" in args
    )

    for variable in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert re.search(rf"\b{variable}=\S+", collect), f"collectstatic needs a dummy {variable}"
    env_lines = " ".join(
        args for instruction, args in dockerfile_instructions() if instruction in {"ENV", "ARG"}
    )
    assert "SECRET_KEY" not in env_lines, "a build-time key must not stay in the image"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = set((BASE_DIR / ".dockerignore").read_text().split())

    assert {".env", ".venv", "var", ".git"} <= ignored
