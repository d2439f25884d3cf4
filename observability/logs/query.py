"""The log search syntax, parsed once for both backends, and what a search asks for.

    timeout payment        both words (in any order)
    "connection reset"     the phrase, words adjacent and in order
    -healthcheck           lines without the word (also -"a phrase")
    pay*                   a word starting with `pay`
    *card-4242*            the text anywhere in the message, as written (case-insensitive)

Terms are combined with AND. Matching is by whole words as written (no stemming), case-
insensitive. A query the syntax cannot express (an unclosed quote, a term without a letter or
digit, a lone `-`) is a `QuerySyntaxError`, which the API answers with a 400.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 20
_TOKEN = re.compile(r'\s*(-?)(?:"([^"]*)("?)|(\S+))')
_WORDLIKE = re.compile(r"\w", re.UNICODE)


class QuerySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    kind: str  # "word", "phrase", "prefix" or "substring"
    text: str
    negated: bool = False


def parse(query: str) -> list[Term]:
    """The terms of a query; an empty query is no terms (every line matches)."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"The query is longer than {MAX_QUERY_LENGTH} characters.")
    terms, position = [], 0
    query = query.strip()
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:  # only trailing blanks left
            break
        position = match.end()
        minus, phrase, closed, bare = match.groups()
        if phrase is not None:
            if not closed:
                raise QuerySyntaxError(f'Unclosed quote in the query: "{phrase[:40]}')
            terms.append(_phrase(phrase, negated=bool(minus)))
        elif bare is not None:
            terms.append(_bare(bare, negated=bool(minus)))
        else:
            raise QuerySyntaxError("A lone '-' in the query: put the word right after it.")
        if len(terms) > MAX_TERMS:
            raise QuerySyntaxError(f"More than {MAX_TERMS} terms in one query.")
    return terms


def _phrase(text: str, negated: bool) -> Term:
    if not _WORDLIKE.search(text):
        raise QuerySyntaxError(f'The phrase "{text[:40]}" has no word to search for.')
    return Term("phrase", " ".join(text.split()), negated)


def _bare(text: str, negated: bool) -> Term:
    if '"' in text:
        raise QuerySyntaxError(f"A quote inside {text[:40]!r}: quote whole phrases.")
    if len(text) > 2 and text.startswith("*") and text.endswith("*"):
        inner = text[1:-1]
        if "*" in inner or len(inner) < 3:
            raise QuerySyntaxError(
                f"{text[:40]!r}: a substring search takes at least 3 characters and no '*'."
            )
        return Term("substring", inner, negated)
    if "*" in text[:-1]:
        raise QuerySyntaxError(
            f"{text[:40]!r}: '*' goes at the end of a word (pay*) or around a text (*card*)."
        )
    word = text.rstrip("*")
    if not _WORDLIKE.search(word):
        raise QuerySyntaxError(f"{text[:40]!r} has no letter or digit to search for.")
    return Term("prefix" if text.endswith("*") else "word", word, negated)


@dataclass
class LogQuery:
    """A search: the parsed text, the filters and where the page starts."""

    terms: list[Term] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    application_ids: list[int] = field(default_factory=list)
    applications: list[str] = field(default_factory=list)  # slugs, for Elasticsearch
    service: str = ""
    trace_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    after: list | None = None  # the cursor's sort values: the last line of the previous page
    size: int = 50

    @property
    def positive(self) -> list[Term]:
        return [t for t in self.terms if not t.negated]


def cursor_encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def cursor_decode(cursor: str) -> list:
    """The sort values in a cursor; a cursor that is not one of ours is a QuerySyntaxError."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==="))
    except (ValueError, UnicodeError) as exc:
        raise QuerySyntaxError("The cursor is not one this API gave.") from exc
    if not isinstance(values, list) or len(values) != 2:
        raise QuerySyntaxError("The cursor is not one this API gave.")
    return values
