"""The log-store tests: the same behaviour asked of both backends. PostgreSQL runs here;
Elasticsearch wherever ELASTICSEARCH_URL answers (skipped otherwise, with the reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from observability.logs.postgres import PostgresLogStore
from observability.logs.query import LogQuery, cursor_decode, parse
from observability.logs.store import ElasticsearchWithOutbox
from observability.models import LogOutbox
from observability.tests.logs_fixtures import elasticsearch_url, record, unique_prefix

pytestmark = pytest.mark.django_db


@pytest.fixture(
    params=["postgresql", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)]
)
def store(request, settings):
    if request.param == "postgresql":
        yield PostgresLogStore()
        return
    url = elasticsearch_url()
    if url is None:
        pytest.skip("no Elasticsearch answers at ELASTICSEARCH_URL (none can be installed here)")
    settings.ELASTICSEARCH_URL = url
    settings.LOG_INDEX_PREFIX = unique_prefix()
    es_store = ElasticsearchWithOutbox()
    yield es_store
    es_store.client.indices.delete(index=f"{settings.LOG_INDEX_PREFIX}-*")
    es_store.client.indices.delete_index_template(name=settings.LOG_INDEX_PREFIX)


def written(store, records):
    store.write(records)
    if isinstance(store, ElasticsearchWithOutbox):
        assert not LogOutbox.objects.exists(), "Elasticsearch refused the lines"
        from django.conf import settings

        store.client.indices.refresh(index=settings.LOG_INDEX_PREFIX)


def search(store, q: str = "", **filters):
    now = datetime.now(UTC)
    query = LogQuery(
        terms=parse(q), since=now - timedelta(days=1), until=now + timedelta(minutes=1), **filters
    )
    return store.search(query)


def messages(page) -> list[str]:
    return [hit.message for hit in page.hits]


def test_words_phrases_negations_prefixes_and_substrings(store, application):
    written(store, [
        record(application, "payment timeout for order 42", minutes_ago=5),
        record(application, "timeout waiting for payment gateway", minutes_ago=4),
        record(application, "connection reset by peer", minutes_ago=3),
        record(application, "healthcheck ok", minutes_ago=2),
        record(application, "charged card-4242 for order 7", minutes_ago=1),
    ])  # fmt: skip
    assert messages(search(store, "timeout payment")) == [
        "timeout waiting for payment gateway",
        "payment timeout for order 42",
    ]
    assert messages(search(store, '"payment timeout"')) == ["payment timeout for order 42"]
    assert messages(search(store, "order -timeout")) == ["charged card-4242 for order 7"]
    assert messages(search(store, "gate*")) == ["timeout waiting for payment gateway"]
    assert messages(search(store, "*RD-424*")) == ["charged card-4242 for order 7"]
    assert len(search(store).hits) == 5


def test_filters_by_level_application_service_and_trace(store, make_application):
    shop, _ = make_application("shop")
    blog, _ = make_application("blog")
    trace = "0af7651916cd43dd8448eb211c80319c"
    written(store, [
        record(shop, "disk full", level="error", service="api"),
        record(shop, "disk check", level="info", service="worker"),
        record(blog, "disk full too", level="error", service="api", trace_id=trace),
    ])  # fmt: skip
    assert messages(search(store, "disk", levels=["error"], application_ids=[shop.pk],
                           applications=["shop"])) == ["disk full"]  # fmt: skip
    assert len(search(store, "disk", service="api").hits) == 2
    assert messages(search(store, trace_id=trace)) == ["disk full too"]


def test_newest_first_in_cursor_pages_without_gaps_or_repeats(store, application):
    written(store, [record(application, f"line {i}", minutes_ago=100 - i) for i in range(25)])
    seen, after = [], None
    for _ in range(10):
        now = datetime.now(UTC)
        page = store.search(
            LogQuery(since=now - timedelta(days=1), until=now, after=after, size=10)
        )
        seen += messages(page)
        if page.next_cursor is None:
            break
        after = store.after_values(cursor_decode(page.next_cursor))
    assert seen == [f"line {i}" for i in reversed(range(25))]


def test_highlights_mark_the_words_and_escape_the_message(store, application):
    written(store, [record(application, "<b>payment</b> refused & retried")])
    hit = search(store, "payment").hits[0]
    assert hit.highlight
    joined = " ".join(hit.highlight)
    assert "<mark>payment</mark>" in joined
    assert "</b>" not in joined and "&lt;/b&gt;" in joined


def test_attributes_and_ids_come_back(store, application):
    line = record(application, "with attributes", attributes={"user": {"id": 7}, "retry": True},
                  host="web-1", span_id="b7ad6b7169203331")  # fmt: skip
    written(store, [line])
    hit = search(store, "attributes").hits[0]
    assert hit.uid == str(line.uid)
    assert hit.attributes == {"user": {"id": 7}, "retry": True}
    assert (hit.host, hit.span_id, hit.application) == ("web-1", "b7ad6b7169203331", "shop")


def test_word_pages_across_the_last_hour_and_older_lines_stay_in_order(store, application):
    # A text search reads the last hour in time order, then older lines through the index.
    written(store, [record(application, f"word line {i}", minutes_ago=180 - 10 * i)
                    for i in range(18)])  # fmt: skip
    seen, after = [], None
    for _ in range(10):
        now = datetime.now(UTC)
        page = store.search(LogQuery(terms=parse("word"), since=now - timedelta(days=1),
                                     until=now, after=after, size=4))  # fmt: skip
        seen += messages(page)
        if page.next_cursor is None:
            break
        after = store.after_values(cursor_decode(page.next_cursor))
    assert seen == [f"word line {i}" for i in reversed(range(18))]


def test_a_batch_asks_for_its_partitions_once_their_transaction_committed(
    application, django_capture_on_commit_callbacks
):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from noc.timeseries import backend
    from observability import storage
    from observability.timeseries import LOG_LINES

    if backend.table_backend_of(connection, LOG_LINES.table) != backend.NATIVE:
        pytest.skip("TimescaleDB makes its chunks itself: no partitions are asked for")
    storage.forget_partitions()
    store = PostgresLogStore()
    with transaction.atomic():  # rolled back: what it saw is not remembered
        store.write([record(application, "first")])
        transaction.set_rollback(True)
    with (
        CaptureQueriesContext(connection) as asked,
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        store.write([record(application, "second")])
    with CaptureQueriesContext(connection) as not_asked:
        store.write([record(application, "third")])
    assert [q for q in asked if "pg_inherits" in q["sql"]]
    assert not [q for q in not_asked if "pg_inherits" in q["sql"]]


def test_a_batch_goes_to_postgresql_in_time_order_and_is_stored_whole(application):
    from observability.logs.postgres import copy_payload
    from observability.models import LogLine

    newest_first = [record(application, f"line {i}", minutes_ago=i) for i in range(6)]
    in_time_order = sorted(newest_first, key=lambda r: r.time_us)
    assert [r.message for r in in_time_order] == [f"line {i}" for i in reversed(range(6))]
    assert copy_payload(newest_first) == copy_payload(in_time_order)
    PostgresLogStore().write(newest_first)
    stored = dict(LogLine.objects.values_list("uid", "message"))
    assert stored == {r.uid: r.message for r in newest_first}
