"""Post-migration validation: does the live schema and its services match what the code expects.

Each check returns a list of findings; `manage.py doctor` prints them and fails on any problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor

from noc import health

OK, FAIL, INFO = "ok", "FAIL", "info"
EXTENSIONS_OF_INTEREST = ("timescaledb", "pg_trgm")

Constraints = dict[str, dict]


@dataclass(frozen=True)
class Finding:
    level: str  # OK, FAIL or INFO
    check: str
    message: str

    @property
    def is_problem(self) -> bool:
        return self.level == FAIL

    def __str__(self) -> str:
        return f"{self.level:<4} {self.check:<13} {self.message}"


# --- Models and what the database says about them ------------------------------------------


def managed_models() -> list[type[models.Model]]:
    """Concrete, managed models of every installed app, auto-created M2M tables included."""
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    ]


def existing_tables() -> set[str]:
    return set(connection.introspection.table_names())


def table_constraints(table: str) -> Constraints:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def concrete_columns(model: type[models.Model]) -> list[models.Field]:
    """Fields stored in this model's own table (a multi-table child does not own its parent's)."""
    return [field for field in model._meta.local_concrete_fields if field.column]


def summarise(check: str, problems: list[Finding], ok_message: str) -> list[Finding]:
    return problems or [Finding(OK, check, ok_message)]


# --- Migrations and tables -----------------------------------------------------------------


def check_migrations() -> list[Finding]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return [Finding(OK, "migrations", "all applied")]
    names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
    return [Finding(FAIL, "migrations", f"{len(plan)} unapplied: {names}")]


def check_tables(tables: set[str]) -> list[Finding]:
    problems = [
        Finding(FAIL, "tables", f"missing table {model._meta.db_table} ({model._meta.label})")
        for model in managed_models()
        if model._meta.db_table not in tables
    ]
    return summarise("tables", problems, f"{len(managed_models())} model tables present")


# --- Foreign keys --------------------------------------------------------------------------


def constrained_relations(model: type[models.Model]) -> list[models.ForeignKey]:
    """ForeignKey and OneToOne fields that Django creates a database constraint for."""
    return [
        field
        for field in concrete_columns(model)
        if isinstance(field, models.ForeignKey) and field.db_constraint
    ]


def has_foreign_key(constraints: Constraints, field: models.ForeignKey) -> bool:
    target = (field.related_model._meta.db_table, field.target_field.column)
    return any(
        info["foreign_key"] == target and info["columns"] == [field.column]
        for info in constraints.values()
    )


def foreign_key_problems(model: type[models.Model], constraints: Constraints) -> list[Finding]:
    table = model._meta.db_table
    return [
        Finding(
            FAIL,
            "foreign keys",
            f"no foreign key on {table}.{field.column} referencing "
            f"{field.related_model._meta.db_table}.{field.target_field.column}",
        )
        for field in constrained_relations(model)
        if not has_foreign_key(constraints, field)
    ]


def check_foreign_keys(schema: dict[type[models.Model], Constraints]) -> list[Finding]:
    problems = [
        problem
        for model, constraints in schema.items()
        for problem in foreign_key_problems(model, constraints)
    ]
    total = sum(len(constrained_relations(model)) for model in schema)
    return summarise("foreign keys", problems, f"{total} foreign key constraints present")


# --- Indexes and constraints ---------------------------------------------------------------


def index_columns(model: type[models.Model], index: models.Index) -> list[str] | None:
    """The columns a field-based index covers, INCLUDE ones last; None for an expression index."""
    if not index.fields:
        return None
    names = [name.lstrip("-") for name in index.fields] + list(index.include)
    return [model._meta.get_field(name).column for name in names]


def named_index_problems(model: type[models.Model], constraints: Constraints) -> list[Finding]:
    table, problems = model._meta.db_table, []
    for index in model._meta.indexes:
        expected = index_columns(model, index)
        if index.name not in constraints:
            problems.append(Finding(FAIL, "indexes", f"missing index {index.name} on {table}"))
        elif expected is not None and constraints[index.name]["columns"] != expected:
            found = constraints[index.name]["columns"]
            message = f"index {index.name} on {table} covers {found}, expected {expected}"
            problems.append(Finding(FAIL, "indexes", message))
    return problems


def named_constraint_problems(model: type[models.Model], constraints: Constraints) -> list[Finding]:
    table = model._meta.db_table
    return [
        Finding(FAIL, "indexes", f"missing constraint {constraint.name} on {table}")
        for constraint in model._meta.constraints
        if constraint.name not in constraints
    ]


def is_unique_on(info: dict, columns: list[str]) -> bool:
    return bool(info["unique"]) and info["columns"] == columns


def is_index_leading_with(info: dict, column: str) -> bool:
    return bool(info["index"] or info["unique"]) and info["columns"][:1] == [column]


def field_index_problems(model: type[models.Model], constraints: Constraints) -> list[Finding]:
    table, problems = model._meta.db_table, []
    for field in concrete_columns(model):
        column, found = field.column, constraints.values()
        if field.unique and not any(is_unique_on(info, [column]) for info in found):
            message = f"no unique constraint on {table}.{column}"
            problems.append(Finding(FAIL, "indexes", message))
        elif field.db_index and not any(is_index_leading_with(info, column) for info in found):
            problems.append(Finding(FAIL, "indexes", f"no index on {table}.{column}"))
    return problems


def unique_together_problems(model: type[models.Model], constraints: Constraints) -> list[Finding]:
    table, problems = model._meta.db_table, []
    for names in model._meta.unique_together:
        columns = [model._meta.get_field(name).column for name in names]
        if not any(is_unique_on(info, columns) for info in constraints.values()):
            message = f"no unique constraint on {table} ({', '.join(columns)})"
            problems.append(Finding(FAIL, "indexes", message))
    return problems


INDEX_RULES: tuple[Callable[[type[models.Model], Constraints], list[Finding]], ...] = (
    named_index_problems,
    named_constraint_problems,
    field_index_problems,
    unique_together_problems,
)


def check_indexes(schema: dict[type[models.Model], Constraints]) -> list[Finding]:
    problems = [
        problem
        for model, constraints in schema.items()
        for rule in INDEX_RULES
        for problem in rule(model, constraints)
    ]
    return summarise(
        "indexes", problems, f"indexes and constraints of {len(schema)} tables present"
    )


# --- Extensions and services ---------------------------------------------------------------


def check_extensions() -> list[Finding]:
    """Optional extensions: their absence changes the backend chosen, it is not a fault."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, default_version, installed_version FROM pg_available_extensions"
            " WHERE name = ANY(%s)",
            [list(EXTENSIONS_OF_INTEREST)],
        )
        available = {name: (default, installed) for name, default, installed in cursor.fetchall()}
    return [extension_finding(name, available.get(name)) for name in EXTENSIONS_OF_INTEREST]


def extension_finding(name: str, versions: tuple[str, str | None] | None) -> Finding:
    if versions is None:
        return Finding(INFO, "extensions", f"{name} not available")
    default, installed = versions
    if installed is None:
        return Finding(INFO, "extensions", f"{name} available ({default}), not installed")
    return Finding(INFO, "extensions", f"{name} {installed} installed")


def probe(check: str, probe_function: Callable[[], str]) -> list[Finding]:
    try:
        detail = probe_function()
    except Exception as exc:  # a probe reports any failure as a finding, it never raises
        return [Finding(FAIL, check, f"unreachable: {type(exc).__name__}: {exc}")]
    return [Finding(OK, check, detail or "reachable")]


def check_services() -> list[Finding]:
    findings = probe("redis", health.check_redis) + probe("broker", health.check_broker)
    if not settings.ELASTICSEARCH_URL:
        return [*findings, Finding(INFO, "elasticsearch", "ELASTICSEARCH_URL not set")]
    return findings + probe("elasticsearch", health.check_elasticsearch)


# --- All together --------------------------------------------------------------------------


def introspect(tables: set[str]) -> dict[type[models.Model], Constraints]:
    """Constraints of every managed model whose table exists (missing ones are reported once)."""
    return {
        model: table_constraints(model._meta.db_table)
        for model in managed_models()
        if model._meta.db_table in tables
    }


def check_schema() -> list[Finding]:
    tables = existing_tables()
    schema = introspect(tables)
    return [
        *check_migrations(),
        *check_tables(tables),
        *check_foreign_keys(schema),
        *check_indexes(schema),
        *check_extensions(),
    ]


def run_checks() -> list[Finding]:
    database = probe("database", health.check_database)
    if any(finding.is_problem for finding in database):
        return database + check_services()  # nothing to inspect without a database
    return database + check_schema() + check_services()


def problems(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.is_problem]
