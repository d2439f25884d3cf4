"""The PostgreSQL log store (the default): binary COPY into daily partitions or chunks, search
with the generated tsvector (GIN), substrings with pg_trgm where it exists, retention by the
time-series layer dropping old partitions.
"""

from __future__ import annotations

import json
import operator
import struct
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from django.db import connection

from observability import storage
from observability.logs.query import LogQuery, QuerySyntaxError, Term, cursor_encode
from observability.logs.records import LogHit, LogPage, LogRecord, attributes_json_text
from observability.points import from_us, to_us
from observability.timeseries import LOG_LINES

TABLE = LOG_LINES.table
COLUMNS = (
    "(uid, time, application_id, level, service, host, trace_id, span_id, message, attributes)"
)
_head = struct.Struct(">hi16siqiq").pack  # 10 fields; uid, time and application id
_len = struct.Struct(">i").pack
_jsonb_head = struct.Struct(">ib").pack  # the value's length, then jsonb's version (1)
_NO_IDS = _len(0) * 2  # trace and span ids both empty, as most lines have them
_TIME = operator.itemgetter(1)  # a record's time_us


def _text(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass") if value else b""
    return _len(len(data)) + data


def copy_payload(records: Sequence[LogRecord]) -> bytes:
    """The records in COPY's binary format, in time order: the primary key (time, uid) and the
    (application, time) index then take a batch's keys in ascending order, each insert beside
    the last one in the tree, which PostgreSQL does with less CPU than the same keys in the
    order they came (bench/RESULTS.md, "Logs"). Level, service and host repeat within a batch:
    each combination is encoded once."""
    parts = [storage.HEADER]
    append = parts.append
    epoch = storage.PG_EPOCH_US
    repeated: dict[tuple[str, str, str], bytes] = {}
    for (uid, time_us, application_id, level, message, service, host, trace_id, span_id,
         attributes, _, attributes_json) in sorted(records, key=_TIME):  # fmt: skip
        key = (level, service, host)
        fields = repeated.get(key)
        if fields is None:
            fields = repeated[key] = _text(level) + _text(service) + _text(host)
        message = message.encode("utf-8", "surrogatepass")
        if not attributes_json:
            attributes_json = attributes_json_text(attributes).encode() if attributes else b"{}"
        append(_head(10, 16, uid.bytes, 8, time_us - epoch, 8, application_id))
        append(fields)
        append(_text(trace_id) + _text(span_id) if trace_id or span_id else _NO_IDS)
        # jsonb's binary form: version 1, then the text.
        append(_len(len(message)))
        append(message)
        append(_jsonb_head(len(attributes_json) + 1, 1))
        append(attributes_json)
    append(storage.TRAILER)
    return b"".join(parts)


class PostgresLogStore:
    name = "postgresql"

    def write(self, records: Sequence[LogRecord]) -> None:
        """COPY the records in; call inside the accepting transaction (the 2xx follows its
        commit)."""
        if not records:
            return
        storage.ensure_days(LOG_LINES, {r.time_us // storage.DAY_US for r in records})
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {TABLE} {COLUMNS} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(copy_payload(records))

    def search(self, query: LogQuery) -> LogPage:
        """Newest first. A search for a word few lines hold (by the column's statistics) reads
        its rows through the GIN index over the whole range at once. Otherwise a text search
        reads the last hour before the page's top in time order (the primary key, backwards:
        a common word fills the page at once), then, when the page is not full, the rest of
        the range through the GIN index (never walking millions of lines backwards)."""
        limit = query.size + 1
        if not _tsquery(query.positive)[0]:
            rows = self._select(query, limit, in_time_order=True)
        elif has_rare_word(query.positive):
            rows = self._select(query, limit, in_time_order=False)
        else:
            top = _top(query)
            recent = replace(query, since=max(query.since, top - RECENT) if query.since else
                             top - RECENT)  # fmt: skip
            rows = self._select(recent, limit, in_time_order=True)
            if len(rows) < limit and (query.since is None or query.since < top - RECENT):
                older = replace(query, until=top - RECENT)
                rows += self._select(older, limit - len(rows), in_time_order=False)
        hits = [_hit(row) for row in rows[: query.size]]
        more = len(rows) > query.size
        last = hits[-1] if hits else None
        cursor_value = cursor_encode([to_us(last.time), last.uid]) if more and last else None
        return LogPage(hits, cursor_value)

    def _select(self, query: LogQuery, limit: int, *, in_time_order: bool) -> list[tuple]:
        where, params = _where(query)
        tsquery, ts_params = _tsquery(query.positive)
        headline = "ARRAY[]::text[]"
        if tsquery:
            # Highlights of the page's lines only: the message HTML-escaped, words in <mark>.
            headline = (
                "ARRAY[ts_headline('simple', replace(replace(replace(message, '&', '&amp;'), "
                "'<', '&lt;'), '>', '&gt;'), " + tsquery + ", 'StartSel=<mark>, StopSel=</mark>, "
                "MaxFragments=3, MaxWords=30, MinWords=8')]"
            )
        # An expression the primary key cannot serve keeps the planner off the backward walk.
        order = "l.time DESC" if in_time_order else "l.time + interval '0 seconds' DESC"
        sql = (
            f"SELECT p.uid, p.time, a.slug, p.level, p.message, p.service, p.host, p.trace_id, "
            f"p.span_id, p.attributes, {headline} FROM (SELECT * FROM {TABLE} l WHERE {where} "
            f"ORDER BY {order}, l.uid DESC LIMIT %s) p "
            "LEFT JOIN observability_application a ON a.id = p.application_id "
            "ORDER BY p.time DESC, p.uid DESC"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*ts_params, *params, limit])
            return cursor.fetchall()

    def after_values(self, values: list) -> list:
        """Check a cursor's values: [microseconds, uid]."""
        time_us, uid = values
        if type(time_us) is not int:
            raise QuerySyntaxError("The cursor is not one this API gave.")
        try:
            return [time_us, str(uuid.UUID(str(uid)))]
        except ValueError as exc:
            raise QuerySyntaxError("The cursor is not one this API gave.") from exc

    def drop_expired(self) -> int:
        """Partitions past LOG_RETENTION_DAYS go with the time-series maintenance task."""
        return 0

    def status(self) -> dict:
        return {"backend": self.name}


RECENT = timedelta(hours=1)
# A word on fewer lines than this share is "rare": its GIN posting list is short, so reading
# its rows over any range beats walking the newest lines in time order looking for it.
RARE_SHARE = 0.001


def has_rare_word(terms: list[Term]) -> bool:
    """Whether a positive word or phrase of the search holds a word that few lines contain,
    judged from ANALYZE's most common elements of the `search` column (a word missing from
    them was not seen in its sample of lines). The planner makes this estimate too, but for a
    word it has no figure for it assumes half the rarest common word's share, which a log's
    small vocabulary makes large: it would walk the newest hour backwards (481,485 lines in
    one measured search) for a word found twice. No statistics yet: not known to be rare."""
    texts = [t.text for t in terms if t.kind in ("word", "phrase") and not t.negated]
    if not texts:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, "
            "ARRAY(SELECT lexeme FROM unnest(to_tsvector('simple', %s))) "
            "FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = %s "
            "AND s.attname = 'search' ORDER BY s.inherited DESC LIMIT 1",
            [" ".join(texts), TABLE],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return False
    elements, shares, words = row
    share = dict(zip(elements, shares, strict=False))  # the last three are min, max, nulls
    return any(share.get(word, 0.0) < RARE_SHARE for word in words)


def _top(query: LogQuery) -> datetime:
    """The newest time a page can hold: the cursor's line, or the end of the range."""
    if query.after is not None:
        return from_us(query.after[0])
    if query.until is not None:
        return query.until
    from django.utils import timezone

    return timezone.now() + timedelta(minutes=10)


def _where(query: LogQuery) -> tuple[str, list]:
    clauses, params = [], []
    if query.since is not None:
        clauses.append("l.time >= %s")
        params.append(query.since)
    if query.until is not None:
        clauses.append("l.time < %s")
        params.append(query.until)
    if query.levels:
        clauses.append("l.level = ANY(%s)")
        params.append(query.levels)
    if query.application_ids:
        clauses.append("l.application_id = ANY(%s)")
        params.append(query.application_ids)
    if query.service:
        clauses.append("l.service = %s")
        params.append(query.service)
    if query.trace_id:
        clauses.append("l.trace_id = %s")
        params.append(query.trace_id)
    if query.after is not None:
        clauses.append("(l.time, l.uid) < (%s, %s::uuid)")
        params.extend([from_us(query.after[0]), query.after[1]])
    tsquery, ts_params = _tsquery(query.terms)
    if tsquery:
        clauses.append(f"l.search @@ {tsquery}")
        params = [*params, *ts_params]
    for term in query.terms:
        if term.kind == "substring":
            clauses.append(f"l.message {'NOT ' if term.negated else ''}ILIKE %s")
            params.append("%" + _like_escape(term.text) + "%")
    # The tsquery clause's parameters come last among the WHERE's: keep their order.
    return " AND ".join(clauses) or "true", params


def _tsquery(terms: list[Term]) -> tuple[str, list]:
    """One tsquery expression for the word-based terms, so a single GIN lookup serves them."""
    parts, params = [], []
    for term in terms:
        if term.kind == "substring":
            continue
        if term.kind == "word":
            sql = "plainto_tsquery('simple', %s)"
        elif term.kind == "phrase":
            sql = "phraseto_tsquery('simple', %s)"
        else:
            sql = "to_tsquery('simple', quote_literal(%s) || ':*')"
        parts.append(f"!!{sql}" if term.negated else sql)
        params.append(term.text.lower() if term.kind == "prefix" else term.text)
    if not parts:
        return "", []
    return "(" + " && ".join(parts) + ")", params


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _hit(row) -> LogHit:
    uid, time, slug, level, message, service, host, trace_id, span_id, attributes, marks = row
    return LogHit(
        uid=str(uid),
        time=time,
        application=slug or "",
        level=level,
        message=message,
        service=service,
        host=host,
        trace_id=trace_id,
        span_id=span_id,
        attributes=attributes if isinstance(attributes, dict) else json.loads(attributes or "{}"),
        highlight=[m for m in marks if m],
    )
