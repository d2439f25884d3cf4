"""The Elasticsearch request bodies, built with elasticsearch.dsl, read as data: the index
template, bulk actions, search bodies and retention's choice of indices. No server answers
here; the store tests run against one wherever ELASTICSEARCH_URL points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from observability.logs import elastic
from observability.logs.query import LogQuery, parse
from observability.logs.records import document
from observability.tests.logs_fixtures import record


def test_the_template_maps_every_field_explicitly_behind_the_alias(settings):
    settings.LOG_INDEX_PREFIX = "noc-logs"
    body = elastic.template_body()
    assert body["index_patterns"] == ["noc-logs-*"]
    template = body["template"]
    assert template["aliases"] == {"noc-logs": {}}
    mappings = template["mappings"]
    assert mappings["dynamic"] == "strict"
    types = {name: spec["type"] for name, spec in mappings["properties"].items()}
    assert types == {
        "uid": "keyword", "time": "date", "application": "keyword", "level": "keyword",
        "service": "keyword", "host": "keyword", "trace_id": "keyword", "span_id": "keyword",
        "message": "text", "attributes": "flattened",
    }  # fmt: skip
    assert mappings["properties"]["message"]["fields"]["wildcard"]["type"] == "wildcard"


@pytest.mark.django_db
def test_bulk_actions_carry_the_line_id_and_its_daily_index(settings, application):
    settings.LOG_INDEX_PREFIX = "noc-logs"
    line = record(application, "hello", trace_id="0af7651916cd43dd8448eb211c80319c")
    (action,) = elastic.bulk_actions([document(line)])
    assert action["_op_type"] == "index"  # a retry overwrites the same document
    assert action["_id"] == str(line.uid)
    assert action["_index"] == f"noc-logs-{line.time:%Y.%m.%d}"
    source = action["_source"]
    assert source["message"] == "hello" and source["application"] == "shop"
    assert source["uid"] == str(line.uid) and "time_us" not in source
    assert datetime.fromisoformat(str(source["time"])) == line.time


def test_a_search_body_has_the_terms_filters_order_cursor_and_highlights(settings):
    settings.LOG_INDEX_PREFIX = "noc-logs"
    since = datetime(2026, 12, 1, tzinfo=UTC)
    query = LogQuery(
        terms=parse('timeout "connection reset" -healthcheck pay* *card-42*'),
        levels=["error", "fatal"], applications=["shop"], service="api",
        trace_id="0af7651916cd43dd8448eb211c80319c", since=since,
        until=since + timedelta(days=1), after=[1764547200000, "abc"], size=20,
    )  # fmt: skip
    body = elastic.search_body(query)
    boolean = body["query"]["bool"]
    filters = boolean["filter"]
    assert {"terms": {"level": ["error", "fatal"]}} in filters
    assert {"terms": {"application": ["shop"]}} in filters
    assert {"term": {"service": "api"}} in filters
    day = {"gte": since.isoformat(), "lt": (since + timedelta(days=1)).isoformat()}
    assert {"range": {"time": day}} in filters
    must = boolean  # the DSL merges the terms into the filters' bool query
    assert {"match": {"message": {"query": "timeout", "operator": "and"}}} in must["must"]
    assert {"match_phrase": {"message": "connection reset"}} in must["must"]
    assert {"match_phrase_prefix": {"message": "pay"}} in must["must"]
    wildcard = {"value": "*card-42*", "case_insensitive": True}
    assert {"wildcard": {"message.wildcard": wildcard}} in must["must"]
    assert must["must_not"] == [{"match": {"message": {"query": "healthcheck", "operator": "and"}}}]
    assert body["sort"] == [{"time": {"order": "desc"}}, {"uid": {"order": "desc"}}]
    assert body["search_after"] == [1764547200000, "abc"]
    assert body["size"] == 21  # one more than the page tells whether another follows
    assert body["highlight"]["fields"] == {"message": {"fragment_size": 200,
                                                       "number_of_fragments": 3}}  # fmt: skip
    assert body["highlight"]["encoder"] == "html"


def test_a_search_without_words_asks_for_no_highlights():
    body = elastic.search_body(LogQuery(levels=["error"]))
    assert "highlight" not in body and "query" in body


def test_retention_deletes_only_whole_days_past_the_cutoff(settings):
    settings.LOG_INDEX_PREFIX = "noc-logs"
    names = ["noc-logs-2026.11.03", "noc-logs-2026.11.04", "noc-logs-2026.11.05",
             "noc-logs-other", "noc-logs-2026.13.01"]  # fmt: skip
    cutoff = datetime(2026, 11, 5, 12, tzinfo=UTC)
    assert elastic.expired_indices(names, cutoff) == ["noc-logs-2026.11.03", "noc-logs-2026.11.04"]
