"""Observability gauges for /metrics (registered into services.metrics by the app config):
the log outbox, and firing alerts by severity."""

from __future__ import annotations

from django.conf import settings


def log_outbox_families(out) -> None:
    if not settings.ELASTICSEARCH_URL:
        return
    from observability.logs.outbox import outbox_status

    status = outbox_status()
    out.family(
        "noc_log_outbox_batches", "gauge",
        "Batches of accepted log lines waiting for Elasticsearch.", [({}, status.batches)],
    )  # fmt: skip
    out.family(
        "noc_log_outbox_lines", "gauge",
        "Accepted log lines waiting for Elasticsearch.", [({}, status.lines)],
    )  # fmt: skip
    out.family(
        "noc_log_outbox_oldest_seconds", "gauge",
        "Age of the oldest batch waiting for Elasticsearch (0 when none waits).",
        [({}, round(status.oldest_age_seconds, 3))],
    )  # fmt: skip
