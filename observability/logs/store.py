"""The one log-store interface and the choice of backend: Elasticsearch when ELASTICSEARCH_URL
is set, PostgreSQL otherwise. Both take `LogRecord`s and answer `LogQuery`s with `LogPage`s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from django.conf import settings
from django.db import transaction

from observability.logs import outbox
from observability.logs.elastic import ElasticLogStore
from observability.logs.postgres import PostgresLogStore
from observability.logs.query import LogQuery
from observability.logs.records import LogPage, LogRecord, document

log = logging.getLogger(__name__)


class LogStore(Protocol):
    name: str

    def write(self, records: Sequence[LogRecord]) -> None:
        """Store the records durably before returning (the caller answers 2xx after)."""

    def search(self, query: LogQuery) -> LogPage: ...

    def after_values(self, values: list) -> list:
        """Check the sort values of a cursor this store gave."""

    def drop_expired(self) -> int:
        """Apply LOG_RETENTION_DAYS; returns what was dropped."""


class ElasticsearchWithOutbox(ElasticLogStore):
    """Writes go to Elasticsearch, or to the outbox when it cannot take them: accepted lines
    are in one of the two before `write` returns."""

    _template_ready = False

    def write(self, records: Sequence[LogRecord]) -> None:
        documents = [document(r) for r in records]
        if not documents:
            return
        if outbox.outbox_waiting():
            with transaction.atomic():
                outbox.outbox_add(documents, error="older batches are waiting")
            return
        try:
            failed = set(self.send(documents))
        except Exception as exc:  # unreachable, timeout, 5xx: keep the batch
            log.warning("Elasticsearch unavailable, %s log lines kept: %s", len(documents), exc)
            with transaction.atomic():
                outbox.outbox_add(documents, error=f"{type(exc).__name__}: {exc}")
            return
        if failed:
            with transaction.atomic():
                outbox.outbox_add(
                    [d for d in documents if d["uid"] in failed],
                    error=f"Elasticsearch refused {len(failed)} lines",
                )

    def send(self, documents: list[dict]) -> list[str]:
        if not ElasticsearchWithOutbox._template_ready:
            self.ensure_template()
            ElasticsearchWithOutbox._template_ready = True
        return self.write_documents(documents)

    def drain(self) -> int:
        return outbox.outbox_drain(self.send)


def log_store() -> LogStore:
    if settings.ELASTICSEARCH_URL:
        return ElasticsearchWithOutbox()
    return PostgresLogStore()
