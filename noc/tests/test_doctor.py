"""`manage.py doctor` against the migrated test database, then with parts of it broken."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from accounts.models import ApiKey


def run_doctor() -> tuple[bool, str]:
    """Return (passed, output)."""
    out = io.StringIO()
    try:
        call_command("doctor", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def fail_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


def foreign_key_name(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return next(
        name
        for name, info in constraints.items()
        if info["foreign_key"] and info["columns"] == [column]
    )


@pytest.mark.django_db
def test_doctor_passes_on_the_migrated_database() -> None:
    passed, output = run_doctor()

    assert passed, output
    assert fail_lines(output) == []
    for check in ("database", "migrations", "tables", "foreign keys", "indexes", "redis"):
        assert any(line.startswith("ok") and check in line for line in output.splitlines())
    assert "info extensions" in output


@pytest.mark.django_db
def test_a_dropped_index_fails_and_is_named() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX audit_target_idx")

    passed, output = run_doctor()

    assert not passed
    assert any("audit_target_idx" in line for line in fail_lines(output)), output


@pytest.mark.django_db
def test_a_dropped_foreign_key_fails_and_names_the_column() -> None:
    table = ApiKey._meta.db_table
    name = foreign_key_name(table, "user_id")
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')

    passed, output = run_doctor()

    assert not passed
    assert any(f"{table}.user_id" in line for line in fail_lines(output)), output


@pytest.mark.django_db
def test_an_unreachable_redis_fails() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        passed, output = run_doctor()

    assert not passed
    assert any("redis" in line for line in fail_lines(output)), output
