"""The Elasticsearch log store: a `LogDocument` (elasticsearch.dsl) whose index template maps
every field explicitly, daily indices `<prefix>-YYYY.MM.DD` behind the alias `<prefix>`, bulk
writes with the client's helper and the lines' own ids (a retried batch overwrites itself),
retention by deleting whole daily indices, `search_after` pages and highlighting.

Every request body is built with the DSL (`template_body`, `bulk_actions`, `search_body`), so
the tests read them as data without a server; the integration tests run against a real one
wherever ELASTICSEARCH_URL points.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from elasticsearch import Elasticsearch, helpers
from elasticsearch.dsl import Date, Document, Flattened, Keyword, Q, Search, Text, Wildcard

from observability.logs.query import LogQuery, QuerySyntaxError, Term, cursor_encode
from observability.logs.records import LogHit, LogPage
from observability.points import from_us

REQUEST_TIMEOUT = 10


def prefix() -> str:
    return settings.LOG_INDEX_PREFIX


class LogDocument(Document):
    """One log line. `attributes` is flattened: any keys, searchable as keywords, without a
    mapping per key (so an application cannot blow up the mapping)."""

    uid = Keyword()
    time = Date()
    application = Keyword()
    level = Keyword()
    service = Keyword()
    host = Keyword()
    trace_id = Keyword()
    span_id = Keyword()
    message = Text(fields={"wildcard": Wildcard()})
    attributes = Flattened()

    class Index:
        name = "noc-logs-*"
        settings = {"number_of_shards": 1, "refresh_interval": "5s"}


def daily_index(moment: datetime) -> str:
    return f"{prefix()}-{moment.astimezone(UTC):%Y.%m.%d}"


def template_body() -> dict[str, Any]:
    """The composable index template: explicit mappings, settings, and the alias every daily
    index joins."""
    index = LogDocument._index.clone(name=f"{prefix()}-*")
    index.aliases(**{prefix(): {}})
    template = index.as_composable_template(prefix(), pattern=f"{prefix()}-*", priority=200)
    body = template.to_dict()
    body["template"]["mappings"]["dynamic"] = "strict"
    return body


def bulk_actions(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Index actions for the bulk helper, one per line, each with its own id and daily
    index (by the line's time)."""
    actions = []
    for doc in documents:
        moment = from_us(doc["time_us"])
        fields = {k: v for k, v in doc.items() if k != "time_us"}
        document = LogDocument(meta={"id": doc["uid"], "index": daily_index(moment)}, **fields)
        document.time = moment
        action = document.to_dict(include_meta=True, skip_empty=False)
        action["_op_type"] = "index"
        actions.append(action)
    return actions


def client() -> Elasticsearch:
    return Elasticsearch(
        settings.ELASTICSEARCH_URL,
        request_timeout=REQUEST_TIMEOUT,
        max_retries=0,
        retry_on_timeout=False,
    )


# --- search ------------------------------------------------------------------------------------


def _term_query(term: Term) -> Q:
    if term.kind == "word":
        return Q("match", message={"query": term.text, "operator": "and"})
    if term.kind == "phrase":
        return Q("match_phrase", message=term.text)
    if term.kind == "prefix":
        return Q("match_phrase_prefix", message=term.text)
    return Q(
        "wildcard",
        **{"message.wildcard": {"value": f"*{term.text}*", "case_insensitive": True}},
    )


def search_request(query: LogQuery) -> Search:
    search = LogDocument.search(index=prefix())
    time_range = {}
    if query.since is not None:
        time_range["gte"] = query.since.isoformat()
    if query.until is not None:
        time_range["lt"] = query.until.isoformat()
    if time_range:
        search = search.filter("range", time=time_range)
    if query.levels:
        search = search.filter("terms", level=query.levels)
    if query.applications:
        search = search.filter("terms", application=query.applications)
    if query.service:
        search = search.filter("term", service=query.service)
    if query.trace_id:
        search = search.filter("term", trace_id=query.trace_id)
    must = [_term_query(t) for t in query.terms if not t.negated]
    must_not = [_term_query(t) for t in query.terms if t.negated]
    if must or must_not:
        search = search.query(Q("bool", must=must, must_not=must_not))
    search = search.sort({"time": {"order": "desc"}}, {"uid": {"order": "desc"}})
    search = search.extra(size=query.size + 1, track_total_hits=False)
    if query.after is not None:
        search = search.extra(search_after=query.after)
    if must:
        search = search.highlight(
            "message", fragment_size=200, number_of_fragments=3
        ).highlight_options(pre_tags=["<mark>"], post_tags=["</mark>"], encoder="html")
    return search


def search_body(query: LogQuery) -> dict[str, Any]:
    return search_request(query).to_dict()


class ElasticLogStore:
    name = "elasticsearch"

    def __init__(self, es: Elasticsearch | None = None) -> None:
        self._client = es

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            self._client = client()
        return self._client

    def ensure_template(self) -> None:
        body = template_body()
        self.client.indices.put_index_template(name=prefix(), **body)

    def write_documents(self, documents: Sequence[dict[str, Any]]) -> list[str]:
        """Index the documents; returns the uids Elasticsearch did not store (to keep for a
        retry). Raises the transport's errors when it cannot be reached at all."""
        if not documents:
            return []
        _ok, errors = helpers.bulk(
            self.client, bulk_actions(documents), raise_on_error=False, max_retries=0,
            refresh=False,
        )  # fmt: skip
        return [next(iter(error.values()))["_id"] for error in errors]

    def search(self, query: LogQuery) -> LogPage:
        response = search_request(query).using(self.client).execute()
        hits = [_hit(hit) for hit in response.hits[: query.size]]
        more = len(response.hits) > query.size
        last = response.hits[query.size - 1] if more else None
        return LogPage(hits, cursor_encode(list(last.meta.sort)) if last is not None else None)

    def after_values(self, values: list) -> list:
        """Check a cursor's values: [epoch milliseconds, uid]."""
        millis, uid = values
        if type(millis) is not int or type(uid) is not str:
            raise QuerySyntaxError("The cursor is not one this API gave.")
        return [millis, uid]

    def drop_expired(self, now: datetime | None = None) -> int:
        """Delete the daily indices wholly older than LOG_RETENTION_DAYS."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.LOG_RETENTION_DAYS)
        names = expired_indices(self.client.indices.get(index=f"{prefix()}-*"), cutoff)
        for name in names:
            self.client.indices.delete(index=name)
        return len(names)

    def status(self) -> dict:
        return {"backend": self.name}


def expired_indices(names: Iterable[str], cutoff: datetime) -> list[str]:
    """Daily indices whose whole day ended before the cutoff; other names are left alone."""
    expired = []
    for name in names:
        day = name.removeprefix(f"{prefix()}-")
        try:
            start = datetime.strptime(day, "%Y.%m.%d").replace(tzinfo=UTC)
        except ValueError:
            continue
        if start + timedelta(days=1) <= cutoff:
            expired.append(name)
    return sorted(expired)


def _hit(hit) -> LogHit:
    source = hit.to_dict()
    highlight = getattr(hit.meta, "highlight", None)
    return LogHit(
        uid=source.get("uid", hit.meta.id),
        time=datetime.fromisoformat(str(source["time"]).replace("Z", "+00:00")),
        application=source.get("application", ""),
        level=source.get("level", ""),
        message=source.get("message", ""),
        service=source.get("service", ""),
        host=source.get("host", ""),
        trace_id=source.get("trace_id", ""),
        span_id=source.get("span_id", ""),
        attributes=source.get("attributes") or {},
        highlight=list(highlight.message) if highlight and "message" in highlight else [],
    )
