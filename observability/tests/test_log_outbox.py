"""Elasticsearch away: an ES URL that refuses connections. Requests are still accepted, every
line waits in the outbox, readiness and /metrics report it, a drain keeps what it cannot send,
and nothing is dropped. The drain itself runs wherever an Elasticsearch answers."""

from __future__ import annotations

import pytest

from observability import actions
from observability.logs.outbox import outbox_status, unpack
from observability.logs.store import ElasticsearchWithOutbox
from observability.models import LogLine, LogOutbox
from observability.tests.logs_fixtures import elasticsearch_url, record, refused_url, unique_prefix
from observability.tests.test_api import bearer

pytestmark = pytest.mark.django_db
INGEST = "/api/logs/ingest"


@pytest.fixture
def elasticsearch_down(settings):
    settings.ELASTICSEARCH_URL = refused_url()
    return settings.ELASTICSEARCH_URL


def send(client, lines):
    return client.post(INGEST, {"logs": lines}, format="json")


def test_lines_accepted_while_elasticsearch_is_away_wait_in_the_outbox(
    elasticsearch_down, make_application, client
):
    _, key = make_application("shop")
    pusher = bearer(key)
    first = send(pusher, [{"message": f"first {i}", "level": "error"} for i in range(3)])
    second = send(pusher, [{"message": "second"}])
    assert (first.status_code, second.status_code) == (200, 200), first.content
    assert first.json()["accepted"] == 3
    assert not LogLine.objects.exists()  # Elasticsearch is the store: nothing goes elsewhere
    batches = list(LogOutbox.objects.order_by("id"))
    assert [b.line_count for b in batches] == [3, 1]
    assert "ConnectionError" in batches[0].last_error
    documents = unpack(batches[0].documents) + unpack(batches[1].documents)
    assert [d["message"] for d in documents] == ["first 0", "first 1", "first 2", "second"]
    assert len({d["uid"] for d in documents}) == 4

    ready = client.get("/health/ready")
    assert ready.status_code == 200  # degraded, not down: the lines are safe in PostgreSQL
    checks = ready.json()["checks"]
    assert checks["elasticsearch"]["status"] == "down"
    assert checks["log_outbox"]["status"] == "down"
    assert "4 log lines in 2 batches" in checks["log_outbox"]["detail"]
    exposition = client.get("/metrics").content.decode()
    assert "noc_log_outbox_lines 4" in exposition
    assert "noc_log_outbox_batches 2" in exposition


def test_a_drain_while_elasticsearch_is_away_keeps_every_line(elasticsearch_down, application):
    actions.log_records_write(records=[record(application, f"line {i}") for i in range(5)])
    assert actions.log_outbox_drain() == 0
    batch = LogOutbox.objects.get()
    assert batch.line_count == 5 and batch.attempts == 1
    assert batch.next_attempt_at > batch.created_at  # backs off
    assert len(unpack(batch.documents)) == 5
    assert outbox_status().lines == 5


@pytest.mark.elasticsearch
def test_the_outbox_drains_into_elasticsearch_once_and_only_once(settings, application):
    url = elasticsearch_url()
    if url is None:
        pytest.skip("no Elasticsearch answers at ELASTICSEARCH_URL (none can be installed here)")
    settings.LOG_INDEX_PREFIX = unique_prefix()
    settings.ELASTICSEARCH_URL = refused_url()
    lines = [record(application, f"buffered {i}") for i in range(10)]
    actions.log_records_write(records=lines)
    settings.ELASTICSEARCH_URL = url
    store = ElasticsearchWithOutbox()
    try:
        assert actions.log_outbox_drain() == 10
        # The same batch again (a drain that died before deleting it) overwrites, never adds.
        store.write_documents([{**d} for d in _documents(lines)])
        store.client.indices.refresh(index=settings.LOG_INDEX_PREFIX)
        count = store.client.count(index=settings.LOG_INDEX_PREFIX)["count"]
        assert count == 10 and not LogOutbox.objects.exists()
    finally:
        store.client.indices.delete(index=f"{settings.LOG_INDEX_PREFIX}-*")
        store.client.indices.delete_index_template(name=settings.LOG_INDEX_PREFIX)


def _documents(records):
    from observability.logs.records import document

    return [document(r) for r in records]
