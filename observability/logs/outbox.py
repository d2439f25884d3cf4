"""The durable outbox: batches of accepted log lines that Elasticsearch has not stored yet.

A batch goes here, in the transaction that accepts it, when Elasticsearch cannot be reached,
refuses lines, or while older batches still wait (so lines reach it in order and an outage
costs one timeout, not one per request). `outbox_drain` (a beat task every 10 s) sends the
oldest batches with their lines' ids, removes what was stored, keeps the rest with a backoff,
and never drops a line. Readiness and /metrics report the size and the age of the oldest.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min, Sum
from django.utils import timezone

from observability.models import LogOutbox

log = logging.getLogger(__name__)
BACKOFF_SECONDS = 10
BACKOFF_CAP_SECONDS = 300
DRAIN_BATCHES = 20


def pack(documents: Sequence[dict[str, Any]]) -> bytes:
    lines = "\n".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in documents)
    return gzip.compress(lines.encode("utf-8", "surrogatepass"), compresslevel=1)


def unpack(data: bytes) -> list[dict[str, Any]]:
    text = gzip.decompress(bytes(data)).decode("utf-8", "surrogatepass")
    return [json.loads(line) for line in text.split("\n") if line]


def outbox_add(documents: Sequence[dict[str, Any]], *, error: str = "") -> LogOutbox | None:
    """Keep a batch for later; call inside the accepting transaction."""
    if not documents:
        return None
    return LogOutbox.objects.create(
        line_count=len(documents), documents=pack(documents), last_error=error[:500]
    )


def outbox_waiting() -> bool:
    return LogOutbox.objects.exists()


@dataclass
class OutboxStatus:
    batches: int
    lines: int
    oldest: datetime | None

    @property
    def oldest_age_seconds(self) -> float:
        if self.oldest is None:
            return 0.0
        return max((timezone.now() - self.oldest).total_seconds(), 0.0)

    def describe(self) -> str:
        if not self.batches:
            return "empty"
        return (
            f"{self.lines} log lines in {self.batches} batches wait for Elasticsearch, the "
            f"oldest for {self.oldest_age_seconds:.0f} s"
        )


def outbox_status() -> OutboxStatus:
    row = LogOutbox.objects.aggregate(
        batches=Count("id"), lines=Sum("line_count"), oldest=Min("created_at")
    )
    return OutboxStatus(row["batches"], row["lines"] or 0, row["oldest"])


Sender = Callable[[list[dict[str, Any]]], list[str]]  # documents -> uids not stored


def outbox_drain(send: Sender, *, limit: int = DRAIN_BATCHES) -> int:
    """Send due batches, oldest first, each in its own transaction (a worker claims one with
    SKIP LOCKED, so two drains never send the same batch at once). Stops at the first batch
    Elasticsearch cannot take at all. Returns the number of lines stored."""
    stored = 0
    for _ in range(limit):
        with transaction.atomic():
            batch = (
                LogOutbox.objects.select_for_update(skip_locked=True)
                .filter(next_attempt_at__lte=timezone.now())
                .order_by("id")
                .first()
            )
            if batch is None:
                break
            documents = unpack(batch.documents)
            try:
                failed = set(send(documents))
            except Exception as exc:  # the transport's errors: unreachable, timeout, 5xx
                _postpone(batch, f"{type(exc).__name__}: {exc}")
                log.warning(
                    "Elasticsearch unavailable, %s log lines kept: %s", batch.line_count, exc
                )
                break
            if not failed:
                batch.delete()
                stored += len(documents)
                continue
            kept = [d for d in documents if d["uid"] in failed]
            stored += len(documents) - len(kept)
            batch.documents, batch.line_count = pack(kept), len(kept)
            _postpone(batch, f"Elasticsearch refused {len(kept)} lines")
    return stored


def _postpone(batch: LogOutbox, error: str) -> None:
    batch.attempts += 1
    delay = min(BACKOFF_SECONDS * 2 ** min(batch.attempts - 1, 10), BACKOFF_CAP_SECONDS)
    batch.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    batch.last_error = error[:500]
    batch.save(
        update_fields=["attempts", "next_attempt_at", "last_error", "documents", "line_count"]
    )
