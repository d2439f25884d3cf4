"""End-to-end: the console and the status page in a real browser (Debian's chromium, driven
by Playwright) against a live server on the test database.

Each role signs in through the login page and reads every page; an operator follows a
failing service from the dashboard to its page and its open incident and acknowledges,
comments and resolves it there; the SLO page draws its chart; the status page and a badge
load without a login; /api/docs/ lists the API's operations. On every page: no console error,
no failed request, no response of 400 or more. Screenshots of each page go to
var/test-artifacts/browser/.

Slow (a browser starts), and skipped with the reason when chromium is not installed (`.ci/run`
installs it from Debian's packages).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from incidents.models import Incident
from services.actions import Observation, check_results_record
from services.models import Service
from slos import actions as slo_actions
from slos.models import SLO
from slos.tests.test_evaluation import NOW, fill

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(settings.BASE_DIR) / "var" / "test-artifacts" / "browser"
PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # (setting up rows, reading them back) are plain synchronous code between its calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@dataclass
class Watch:
    """What went wrong in one browser context: console errors, page errors, failed requests
    and responses of 400 or more."""

    problems: list[str] = field(default_factory=list)

    def attach(self, context, site: str) -> None:
        """`site`: the live server's origin; a request anywhere else is refused and reported
        (the console must work on a network without internet)."""
        context.route("**/*", lambda route: self._route(route, site))
        context.on("page", self._page)
        context.on("requestfailed", self._failed)
        context.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"{r.status} {r.url}"),
        )

    def _failed(self, request) -> None:
        # net::ERR_ABORTED is the browser cancelling a request itself, because the page
        # navigated or closed first (a CI run: the favicon of a page the test had finished
        # with); a request to another site is reported by _route, a server's error by status.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed {request.url}: {request.failure}")

    def _route(self, route, site: str) -> None:
        if route.request.url.startswith(site + "/"):
            route.continue_()
        else:
            self.problems.append(f"request to another site: {route.request.url}")
            route.abort()

    def _page(self, page) -> None:
        page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def open_context(browser, live_server) -> Iterator:
    """open_context(role or None) -> (page, watch): a fresh browser context, signed in through
    the login form when a role is given. Every context is checked clean at the end."""
    opened = []

    def open_(user=None, *, width: int = 1280, color_scheme: str = "light"):
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": 900},
            color_scheme=color_scheme,
        )
        watch = Watch()
        watch.attach(context, live_server.url)
        opened.append((context, watch))
        page = context.new_page()
        if user is not None:
            page.goto("/")  # anonymous: sent to the login page
            assert "/admin/login/" in page.url
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/")
        return page, watch

    yield open_
    for context, watch in opened:
        context.close()
        watch.assert_clean()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@dataclass
class Scene:
    checkout: Service  # failing, with an open incident
    search: Service  # up
    incident: Incident
    slo: SLO


@pytest.fixture
def scene(transactional_db, make_service) -> Scene:
    """Six hours of checks on Checkout, the last half hour failing, then two failing checks
    recorded as the workers do (the incident opens); Search up; an SLO on Checkout evaluated
    a few times (its history and burn-down)."""
    checkout = make_service(name="Checkout", failure_threshold=2, tags=["shop"], critical=True)
    search = make_service(name="Search", tags=["shop"])
    fill(checkout, NOW - timedelta(hours=6), 6 * 60, down=lambda i: i >= 330)
    fill(search, NOW - timedelta(hours=6), 6 * 60, rt=lambda i: 40.0 + i % 30)
    now = timezone.now()
    check_results_record(
        results=[
            Observation(service_id=checkout.pk, due=now - timedelta(seconds=30 - 15 * i),
                        started_at=now, status="down", error="HTTP 503 Service Unavailable",
                        status_code=503)
            for i in range(2)
        ],
        claimed=False,
    )  # fmt: skip
    check_results_record(
        results=[
            Observation(service_id=search.pk, due=now, started_at=now, status="up",
                        response_time_ms=42.0, status_code=200)
        ],
        claimed=False,
    )  # fmt: skip
    incident = Incident.objects.get(service=checkout)
    slo = slo_actions.slo_create(
        actor=None, id="checkout-availability", name="Checkout availability",
        service=checkout, sli_type="availability", target="99", window="24h",
    )  # fmt: skip
    for minutes in (3, 2, 1, 0):
        slo_actions.slos_evaluate(now=NOW - timedelta(minutes=minutes))
    return Scene(checkout=checkout, search=search, incident=incident, slo=slo)


@pytest.fixture
def people(make_user):
    return {
        role: make_user(role, password=PASSWORD)
        for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
    }


# --- every role, every page -------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.VIEWER])
def test_each_role_signs_in_and_reads_every_page(open_context, scene, people, role):
    page, _ = open_context(people[role])
    assert page.locator(f'tr[data-service="{scene.checkout.pk}"] .badge-down').is_visible()
    assert page.locator(f'tr[data-incident="{scene.incident.pk}"]').is_visible()
    shoot(page, f"{role}-dashboard")

    page.goto(f"/services/{scene.checkout.pk}/")
    assert page.locator("#service-status").inner_text() == "Down"
    assert page.locator("svg.line-chart").count() >= 1  # response time
    assert (page.locator("text=Check now").count() > 0) == (role != Role.VIEWER)
    shoot(page, f"{role}-service")

    page.goto(f"/incidents/{scene.incident.pk}/")
    assert "Checkout" in page.locator("#incident-title").inner_text()
    assert "HTTP 503" in page.locator("#evidence").inner_text()
    may_act = page.locator("#incident-actions").count() > 0
    assert may_act == (role != Role.VIEWER)
    shoot(page, f"{role}-incident")

    page.goto(f"/slos/{scene.slo.pk}/")
    assert page.locator("svg.line-chart polyline.series-budget").count() == 1
    shoot(page, f"{role}-slo")

    page.goto("/status/")
    assert "Checkout" in page.content()
    shoot(page, f"{role}-status")


def test_an_anonymous_visitor_is_sent_to_the_login_page(open_context, scene):
    page, _ = open_context()
    for path in ("/", f"/services/{scene.checkout.pk}/", f"/incidents/{scene.incident.pk}/"):
        page.goto(path)
        assert page.url.startswith(page.url.split("/admin/")[0] + "/admin/login/?next=")
    shoot(page, "anonymous-login")


# --- an operator handles the incident from the pages ------------------------------------------


def test_an_operator_follows_a_failing_service_to_its_incident_and_resolves_it(
    open_context, scene, people
):
    operator = people[Role.OPERATOR]
    page, _ = open_context(operator)
    page.click(f'tr[data-service="{scene.checkout.pk}"] a:text("Checkout")')
    page.wait_for_url(re.compile(rf"/services/{scene.checkout.pk}/$"))
    page.click(f'#service-incidents tr[data-incident="{scene.incident.pk}"] a')
    page.wait_for_url(re.compile(rf"/incidents/{scene.incident.pk}/$"))
    shoot(page, "operator-incident-open")

    page.click("#incident-actions button[name=acknowledge]")
    page.wait_for_load_state()
    assert page.locator("#incident-acknowledged").is_visible()

    page.fill("#comment", "Payment provider paged; failing over.")
    page.click("#incident-actions button[name=comment]")
    page.wait_for_load_state()
    assert "Payment provider paged; failing over." in page.locator("#timeline").inner_text()

    page.fill("#resolution_notes", "Failed over to the second provider.")
    page.click("#incident-actions button[name=resolve]")
    page.wait_for_load_state()
    assert page.locator("#incident-status").inner_text() == "Resolved"
    shoot(page, "operator-incident-resolved")

    incident = Incident.objects.get(pk=scene.incident.pk)
    assert incident.status == "resolved" and incident.acknowledged_by_id == operator.pk
    assert incident.resolved_by_id == operator.pk
    kinds = set(incident.events.values_list("kind", flat=True))
    assert {"acknowledged", "comment", "resolved"} <= kinds
    audited = AuditEvent.objects.filter(actor=operator, target_id=str(incident.pk))
    assert {"acknowledge", "comment", "resolve"} <= set(audited.values_list("verb", flat=True))


# --- the public side and the docs ---------------------------------------------------------------


def test_the_status_page_and_a_badge_need_no_login(open_context, scene):
    page, _ = open_context()
    page.goto("/status/")
    text = page.locator("body").inner_text()
    assert "Checkout" in text and "Search" in text
    assert "Checkout is unavailable" in text  # public words, never the incident's own title
    shoot(page, "anonymous-status")
    page.goto("/status/feed.json")
    badge = page.goto(f"/status/badge/{scene.checkout.pk}.svg")
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert "down" in page.content().lower()
    page.screenshot(path=str(ARTIFACTS / "anonymous-badge.png"))  # an SVG document: no full page


def test_the_status_page_reads_on_a_phone(open_context, scene):
    page, _ = open_context(width=390)
    page.goto("/status/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the phone"
    shoot(page, "phone-status")


def test_the_dashboard_reads_on_a_phone(open_context, scene, people):
    page, _ = open_context(people[Role.VIEWER], width=390)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the phone"
    shoot(page, "phone-dashboard")


def test_the_dashboard_refreshes_what_changed_without_a_reload(open_context, scene, people):
    page, _ = open_context(None)
    page.clock.install()  # the page's 15-second timer, run forward instead of waited for
    viewer = people[Role.VIEWER]
    page.goto("/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector(f'tr[data-service="{scene.search.pk}"] .badge-up')
    # The row can be in the DOM before console.js has run and set its timer: running the
    # clock forward before then would fire nothing (a CI run failed so).
    page.wait_for_load_state("load")
    page.evaluate("window.notReloaded = true")
    Service.objects.filter(pk=scene.search.pk).update(status="down")

    page.clock.run_for(16_000)
    page.clock.resume()  # the selector's polling runs on the page's timers too
    page.wait_for_selector(f'tr[data-service="{scene.search.pk}"] .badge-down', timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    shoot(page, "viewer-dashboard-refreshed")


BACKGROUND = "getComputedStyle(document.body).backgroundColor"


def luminance(css_rgb: str) -> float:
    red, green, blue = (int(n) for n in re.findall(r"\d+", css_rgb)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


def test_the_pages_follow_the_systems_dark_setting(open_context, scene, people):
    light, _ = open_context(people[Role.VIEWER])
    dark, _ = open_context(people[Role.VIEWER], color_scheme="dark")
    assert luminance(light.evaluate(BACKGROUND)) > 0.8
    assert luminance(dark.evaluate(BACKGROUND)) < 0.2
    shoot(dark, "dark-dashboard")
    for page in (light, dark):
        page.goto("/status/")
    assert luminance(dark.evaluate(BACKGROUND)) < 0.2 < luminance(light.evaluate(BACKGROUND))
    shoot(dark, "dark-status")


def test_the_api_docs_list_the_operations_offline(open_context, scene, people):
    page, _ = open_context(people[Role.ADMIN])
    page.goto("/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    operations = page.locator(".opblock").count()
    assert operations > 20, operations
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/incidents/" in p and "acknowledge" in p for p in paths), paths[:50]
    shoot(page, "admin-api-docs")
