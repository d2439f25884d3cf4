"""The PostgreSQL store's choice of how to read a text search: a word few lines hold through
the GIN index over the whole range, a common one from the newest lines in time order. Both
give the same page; the choice follows ANALYZE's statistics of the `search` column."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from observability.logs import postgres
from observability.logs.postgres import PostgresLogStore, has_rare_word
from observability.logs.query import LogQuery, cursor_decode, parse
from observability.tests.logs_fixtures import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed(application):
    """3,000 lines of a small vocabulary over two hours, one with a rare word, analysed."""
    words = ("request", "served", "payment", "cache", "miss")
    lines = [
        record(application, f"{words[i % 5]} {words[(i * 7) % 5]} order {i}", minutes_ago=i / 25)
        for i in range(3000)
    ]
    lines.append(record(application, "request served zanzibar", minutes_ago=90))
    PostgresLogStore().write(lines)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {postgres.TABLE}")
    return application


def test_a_word_missing_from_the_statistics_is_rare_a_frequent_one_is_not(analysed):
    assert has_rare_word(parse("zanzibar"))
    assert has_rare_word(parse("request zanzibar"))  # one rare word makes the search narrow
    assert has_rare_word(parse('"served zanzibar"'))
    assert not has_rare_word(parse("request"))
    assert not has_rare_word(parse('"request served"'))
    assert not has_rare_word(parse("request -zanzibar"))  # negated words narrow nothing
    assert not has_rare_word(parse("requ*"))  # a prefix's share is not known


def test_without_statistics_nothing_is_known_to_be_rare(application):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = %s AND attname = 'search'",
            [postgres.TABLE],
        )
        if cursor.fetchone()[0]:
            pytest.skip("the suite's database already has statistics for the log table")
    assert not has_rare_word(parse("zanzibar"))


@pytest.mark.parametrize("q", ["zanzibar", "request", "payment -cache", '"payment miss"'])
def test_both_ways_of_reading_give_the_same_pages(analysed, monkeypatch, q):
    store = PostgresLogStore()
    now = datetime.now(UTC)
    query = LogQuery(terms=parse(q), since=now - timedelta(hours=3), until=now, size=20)

    def pages(rare: bool) -> list[list[str]]:
        monkeypatch.setattr(postgres, "has_rare_word", lambda terms: rare)
        found, page = [], store.search(query)
        found.append([hit.message for hit in page.hits])
        while page.next_cursor and len(found) < 4:
            page = store.search(replace(query, after=cursor_decode(page.next_cursor)))
            found.append([hit.message for hit in page.hits])
        return found

    assert pages(True) == pages(False)
    assert pages(True)[0]  # something was found
