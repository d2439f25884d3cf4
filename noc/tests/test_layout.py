"""The layers: the project package (noc/) is the base the apps stand on, the console (web/)
stands on all of them. Read from the source, so a new import that crosses a layer fails here.

- noc/ imports no domain app, except urls.py (which routes to every app) and asgi.py (the web
  entry point, which answers push pings through services before Django routes), the `manage.py`
  commands that span apps (DESIGN.md: `up` and its runner, `load_demo`), and accounts (the
  base app: roles and audit) in the shared API and admin base classes that apply them.
- No app imports web/: the console reads the apps, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
DOMAIN_APPS = {"accounts", "services", "incidents", "slos", "collectors", "observability"}
TOP = "web"

# noc/ modules that may import apps, and which.
ALLOWED = {
    "noc/urls.py": DOMAIN_APPS | {TOP},
    "noc/asgi.py": {"services"},
    "noc/runner.py": {"accounts", "services"},
    "noc/management/commands/load_demo.py": {"services"},
    "noc/api/permissions.py": {"accounts"},
    "noc/api/viewsets.py": {"accounts"},
    "noc/admin.py": {"accounts"},
    "noc/admin_packages.py": {"accounts"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports, wherever the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(package: str) -> list[Path]:
    return [
        path
        for path in sorted((BASE_DIR / package).rglob("*.py"))
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def test_the_project_package_imports_no_app_beyond_its_allowed_seams():
    crossing = {}
    for path in sources("noc"):
        name = path.relative_to(BASE_DIR).as_posix()
        apps = imported_packages(path) & (DOMAIN_APPS | {TOP})
        extra = apps - ALLOWED.get(name, set())
        if extra:
            crossing[name] = sorted(extra)
    assert crossing == {}


def test_the_allowed_seams_are_still_needed():
    """An exception nobody uses any more is removed from ALLOWED (the rule only tightens)."""
    for name, apps in ALLOWED.items():
        used = imported_packages(BASE_DIR / name) & (DOMAIN_APPS | {TOP})
        assert used, f"{name} no longer imports an app: drop it from ALLOWED"
        if name != "noc/urls.py":
            assert used == apps, (name, used)


def test_no_app_imports_the_console():
    for app in sorted(DOMAIN_APPS):
        if not (BASE_DIR / app).is_dir():
            continue
        for path in sources(app):
            assert TOP not in imported_packages(path), path.relative_to(BASE_DIR)


def test_the_console_is_installed_after_every_app_it_reads():
    from django.conf import settings

    apps = [a for a in settings.INSTALLED_APPS if a in DOMAIN_APPS | {TOP}]
    assert apps[-1] == TOP
