"""Every environment variable the code reads is documented in .env.example and in the README."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = BASE_DIR / ".env.example"
README = BASE_DIR / "README.md"

# `NAME=value` or, commented out, `#NAME=value`; explanations are `# text`.
ASSIGNMENT = re.compile(r"^#?([A-Z][A-Z0-9_]*)=")

# Read by the code but never set by a person: each with the reason it stays out of .env.example.
INTERNAL = {
    "NOC_EMBEDDED_ATTACHED": "set by a process for itself once it attached the embedded servers",
}

# Read by a later issue's code, documented ahead of it.
ANNOUNCED = {"NOC_TIMESERIES", "NOC_CHECK_ALLOW_PRIVATE"}


def documented_names() -> list[str]:
    """Variable names of .env.example, in file order (duplicates kept)."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    return [m.group(1) for line in lines if (m := ASSIGNMENT.match(line))]


def settings_env_names(path: Path = BASE_DIR / "noc" / "settings.py") -> set[str]:
    """Names passed to django-environ in settings: env("X"), env.str("X"), env.int("X") …"""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        )
        first = node.args[0]
        if is_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def _is_os_environ(node: ast.AST) -> bool:
    """`os.environ`, or `environ` imported from os."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _environ_key(node: ast.AST) -> ast.AST | None:
    """The key expression when `node` reads the environment, else None."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
        func = node.func
        on_os = isinstance(func.value, ast.Name) and func.value.id == "os"
        if (on_os and func.attr == "getenv") or (func.attr == "get" and _is_os_environ(func.value)):
            return node.args[0]
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        return node.slice if _is_os_environ(node.value) else None
    if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
        return node.left if _is_os_environ(node.comparators[0]) else None
    return None


def os_environ_reads(tree: ast.AST) -> set[str]:
    """Names read with os.environ.get("X"), os.environ["X"], os.getenv("X") or "X" in os.environ.

    Writes (os.environ["X"] = …) and setdefault (DJANGO_SETTINGS_MODULE) are not reads of a
    setting.
    """
    keys = [key for node in ast.walk(tree) if (key := _environ_key(node)) is not None]
    return {name for key in keys if (name := _string(key))}


def first_party_modules() -> list[Path]:
    """The project's Python modules: manage.py and every top-level package, minus tests."""
    packages = [p.parent for p in BASE_DIR.glob("*/__init__.py")]
    modules = [BASE_DIR / "manage.py"]
    for package in packages:
        for path in package.rglob("*.py"):
            parts = set(path.relative_to(BASE_DIR).parts)
            if not parts & {"tests", "migrations"}:
                modules.append(path)
    return sorted(modules)


def variables_read() -> set[str]:
    names = settings_env_names()
    for path in first_party_modules():
        names |= os_environ_reads(ast.parse(path.read_text(), filename=str(path)))
    return names - set(INTERNAL)


# --- The scanner itself ---------------------------------------------------------------------


def test_scanner_finds_django_environ_calls_of_every_type() -> None:
    found = settings_env_names()

    assert {"NOC_ENV", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DB_POOL_TIMEOUT"} <= found
    assert "STATIC_ROOT" in found  # env.path


def test_scanner_finds_os_environ_reads_but_not_writes() -> None:
    tree = ast.parse(
        "import os\n"
        "from os import environ\n"
        "a = os.environ.get('A_GET')\n"
        "b = os.environ['B_ITEM']\n"
        "c = os.getenv('C_GETENV')\n"
        "d = 'D_IN' in os.environ\n"
        "e = environ.get('E_BARE')\n"
        "os.environ['W_WRITE'] = '1'\n"
        "os.environ.setdefault('S_DEFAULT', 'x')\n"
    )

    assert os_environ_reads(tree) == {"A_GET", "B_ITEM", "C_GETENV", "D_IN", "E_BARE"}


def test_scanner_finds_the_variables_of_the_embedded_servers_and_runner() -> None:
    assert {"NOC_VAR_DIR", "NOC_EMBEDDED", "NOC_ADMIN_PASSWORD", "DATABASE_URL"} <= (
        variables_read()
    )


def test_internal_variables_are_really_read() -> None:
    """An INTERNAL entry the code no longer reads would silently hide a future variable."""
    read = set()
    for path in first_party_modules():
        read |= os_environ_reads(ast.parse(path.read_text()))

    assert set(INTERNAL) <= read


# --- .env.example ---------------------------------------------------------------------------


def test_every_variable_the_code_reads_is_in_env_example() -> None:
    missing = sorted(variables_read() - set(documented_names()))

    assert not missing, f"add to .env.example: {', '.join(missing)}"


def test_env_example_documents_the_variables_announced_for_the_next_issue() -> None:
    assert set(documented_names()) >= ANNOUNCED


def test_env_example_lists_each_variable_once() -> None:
    names = documented_names()
    duplicates = sorted({name for name in names if names.count(name) > 1})

    assert not duplicates


def test_env_example_does_not_document_internal_variables() -> None:
    assert not set(documented_names()) & set(INTERNAL)


def test_every_variable_in_env_example_has_a_comment_giving_its_default() -> None:
    undocumented = []
    comment: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ASSIGNMENT.match(line):
            if not any("default" in text.lower() for text in comment):
                undocumented.append(match.group(1))
            comment = []
        elif line.startswith("# "):
            comment.append(line)
        else:
            comment = []

    assert not undocumented, f"explain these and their defaults: {', '.join(undocumented)}"


def test_copying_env_example_to_dot_env_changes_no_default() -> None:
    """Defaults follow NOC_ENV; an uncommented value in a copied .env would freeze one."""
    active = [line for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z]", line)]

    assert not active


# --- README ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", documented_names())
def test_every_variable_in_env_example_is_in_the_readme(name: str) -> None:
    assert README.exists(), "README.md is missing"
    assert re.search(rf"\b{name}\b", README.read_text()), f"README.md does not mention {name}"
