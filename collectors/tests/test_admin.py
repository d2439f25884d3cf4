"""The collectors admin: definitions added through the actions (token stored encrypted, never
shown), start and stop actions (audited), runs listed with their last error."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent
from collectors.models import Collector, CollectorRun

pytestmark = pytest.mark.django_db
COLLECTORS = "/admin/collectors/collector/"
RUNS = "/admin/collectors/collectorrun/"


@pytest.fixture
def admin_client_(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def form(application, **fields) -> dict:
    return {"name": "node", "kind": "prometheus", "application": application.pk,
            "enabled": "on", "interval_seconds": 15, "url": "http://127.0.0.1:9100/metrics",
            "timeout_seconds": 10, "allow_private": "true", "metric_allow": "[]",
            "metric_deny": "[]", "extra_labels": "{}", "json_paths": "{}", "bearer_token_env": "",
            "price_path": "", "symbol": "", "timeframe": "", "max_body_bytes": "",
            **fields}  # fmt: skip


def test_a_collector_added_in_the_admin_keeps_its_token_encrypted(admin_client_, application):
    response = admin_client_.post(
        f"{COLLECTORS}add/", form(application, new_token="s3cret"), follow=True
    )
    assert response.status_code == 200
    collector = Collector.objects.get()
    assert collector.token and "s3cret" not in collector.token
    page = admin_client_.get(f"{COLLECTORS}{collector.pk}/change/").content.decode()
    assert "s3cret" not in page and collector.token not in page
    assert AuditEvent.objects.filter(target_type="collectors.collector", action="create").exists()


def test_a_bad_definition_is_shown_on_the_form_and_not_saved(admin_client_, application):
    response = admin_client_.post(
        f"{COLLECTORS}add/", form(application, url="http://169.254.169.254/", interval_seconds=0)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "url" in errors and "interval_seconds" in errors
    assert not Collector.objects.exists()


def test_start_and_stop_actions_and_the_last_error_in_the_runs_list(admin_client_, make_collector):
    collector = make_collector(url="http://127.0.0.1:9/")
    admin_client_.post(COLLECTORS, {"action": "start_runs", "_selected_action": [collector.pk]})
    run = CollectorRun.objects.get(status="running")
    again = admin_client_.post(
        COLLECTORS, {"action": "start_runs", "_selected_action": [collector.pk]}, follow=True
    )
    assert "already runs" in again.content.decode()
    CollectorRun.objects.filter(pk=run.pk).update(last_error="the target answered HTTP 503")
    listed = admin_client_.get(RUNS).content.decode()
    assert "the target answered HTTP 503" in listed
    admin_client_.post(RUNS, {"action": "stop_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "stopped"
    verbs = AuditEvent.objects.filter(target_type="collectors.collectorrun").values_list("verb")
    assert sorted(v for (v,) in verbs) == ["start", "stop"]
