"""The dashboard's "Collectors in error" section: runs the collectors app marked in error
(here a run found dead by the real dead-run detection), with why, at a fixed query cost."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from collectors import actions
from collectors.models import CollectorRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_collector(make_collector):
    def make(name: str = ""):
        fields = {"name": name} if name else {}
        return make_collector(url="http://127.0.0.1:9/metrics", interval_seconds=10, **fields)

    return make


def section(html: str) -> str:
    match = re.search(
        r'<section class="panel" id="collectors-in-error">.*?</section>', html, re.DOTALL
    )
    assert match, "no collectors-in-error section"
    return match.group(0)


def dead_run(collector) -> CollectorRun:
    now = timezone.now()
    run = CollectorRun.objects.create(
        collector=collector, last_heartbeat_at=now - timedelta(hours=1)
    )
    assert actions.collector_runs_mark_dead(now=now) == [run.pk]
    run.refresh_from_db()
    return run


def test_a_dead_run_is_listed_with_its_error(viewer_client, new_collector):
    run = dead_run(new_collector("shop metrics"))
    html = section(viewer_client.get("/").content.decode())
    assert "Collectors in error (1)" in html
    assert f'data-collector-run="{run.pk}"' in html
    assert "shop metrics" in html and "no heartbeat for" in html


def test_without_errors_the_section_says_so(viewer_client, new_collector):
    CollectorRun.objects.create(collector=new_collector(), last_heartbeat_at=timezone.now())
    html = section(viewer_client.get("/").content.decode())
    assert "Collectors in error (0)" in html and "No collector in error." in html


def test_the_section_is_part_of_the_live_refresh_at_one_query(viewer_client, new_collector):
    dead_run(new_collector("first"))
    viewer_client.get("/?parts=1")
    with CaptureQueriesContext(connection) as few:
        viewer_client.get("/?parts=1")
    for n in range(5):
        dead_run(new_collector(f"more {n}"))
    with CaptureQueriesContext(connection) as many:
        parts = viewer_client.get("/?parts=1").json()["parts"]["sections"]
    assert "Collectors in error (6)" in parts
    assert len(many) == len(few)
