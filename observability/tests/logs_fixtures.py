"""Helpers of the log tests: records, and the stores the same tests run against."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from observability.logs.records import LogRecord, new_uid
from observability.points import to_us


def record(application, message: str, *, minutes_ago: float = 1, **fields) -> LogRecord:
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    time_us = to_us(when)
    return LogRecord(
        uid=new_uid(time_us),
        time_us=time_us,
        application_id=application.pk,
        level=fields.pop("level", "info"),
        message=message,
        application=application.slug,
        **fields,
    )


def elasticsearch_url() -> str | None:
    """An Elasticsearch to run the integration tests against, when one answers."""
    url = os.environ.get("ELASTICSEARCH_URL", "")
    if not url:
        return None
    from elasticsearch import Elasticsearch

    try:
        Elasticsearch(url, request_timeout=3, max_retries=0).info()
    except Exception:
        return None
    return url


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def unique_prefix() -> str:
    return f"noc-test-{uuid.uuid4().hex[:8]}"
