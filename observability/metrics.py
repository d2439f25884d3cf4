"""Observability families for /metrics (registered into services.metrics by the app config):
the log outbox, and the ingestion counters (`observability.counters`)."""

from __future__ import annotations

from django.conf import settings

from observability import counters

STORED = {
    counters.METRICS: ("noc_ingest_points_total", "Metric points stored (every ingestion path)."),
    counters.LOGS: ("noc_ingest_log_lines_total", "Log lines stored."),
    counters.SPANS: ("noc_ingest_spans_total", "Trace spans stored."),
}


def ingest_counter_families(out) -> None:
    values = counters.read()
    for signal, (name, help_text) in STORED.items():
        out.family(name, "counter", help_text, [({}, values.get(f"accepted|{signal}", 0))])
    rejected, refused = [], []
    for field, value in sorted(values.items()):
        kind, _, rest = field.partition("|")
        signal, _, reason = rest.partition("|")
        if kind == "rejected":
            rejected.append(({"signal": signal, "reason": reason}, value))
        elif kind == "refused":
            refused.append(({"signal": signal, "code": reason}, value))
    out.family(
        "noc_ingest_rejected_total", "counter",
        "Items (metric points, log lines, spans) not stored, by signal and reason.", rejected,
    )  # fmt: skip
    out.family(
        "noc_ingest_requests_refused_total", "counter",
        "Ingestion requests refused whole (4xx), by signal and error code.", refused,
    )  # fmt: skip


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
