"""LOG_SHIP=1: the project's own log records reach the log store with their request id."""

from __future__ import annotations

import logging

import pytest

from noc.logs import RequestContextFilter
from noc.request_context import RequestContext, current
from observability.logs.shipping import ShippingHandler
from observability.models import Application, LogLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def handler():
    handler = ShippingHandler()
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("noc.test.shipping")
    logger.addHandler(handler)
    handler._thread = object()  # no background thread: the test flushes by itself
    yield handler
    logger.removeHandler(handler)


def test_own_log_records_are_stored_with_their_request_id(handler):
    token = current.set(RequestContext(request_id="req-42"))
    try:
        logging.getLogger("noc.test.shipping").warning("disk %s is full", "/var")
    finally:
        current.reset(token)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("noc.test.shipping").exception("it failed")
    handler.flush()
    lines = {line.message: line for line in LogLine.objects.all()}
    assert set(lines) == {"disk /var is full", "it failed"}
    warning = lines["disk /var is full"]
    assert warning.level == "warn" and warning.application.slug == "noc"
    assert warning.attributes["request_id"] == "req-42"
    assert warning.attributes["logger"] == "noc.test.shipping"
    assert "ValueError: boom" in lines["it failed"].attributes["exception"]
    assert Application.objects.filter(slug="noc").count() == 1


def test_the_storage_path_own_records_are_not_shipped(handler):
    logging.getLogger("observability.logs.outbox").addHandler(handler)
    try:
        logging.getLogger("observability.logs.outbox").warning("would feed itself")
    finally:
        logging.getLogger("observability.logs.outbox").removeHandler(handler)
    handler.flush()
    assert not LogLine.objects.exists()
