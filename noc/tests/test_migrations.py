"""Every migration applies from an empty schema and reverts to it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

PROJECT_APPS = {"accounts", "noc", "services", "incidents", "slos", "collectors", "observability"}


def project_tables() -> set[str]:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    return {t for t in tables if t.split("_", 1)[0] in PROJECT_APPS}


@pytest.mark.django_db(transaction=True)
def test_migrations_go_from_zero_to_latest_and_back():
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    apps = {app for app, _ in leaves}
    assert project_tables(), "the test database should start migrated"

    executor.migrate([(app, None) for app in apps])
    assert project_tables() == set()

    MigrationExecutor(connection).migrate(leaves)
    assert not MigrationExecutor(connection).migration_plan(leaves)
    assert "accounts_user" in project_tables()
