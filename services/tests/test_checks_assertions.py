"""Assertions are pure rules: status, body, JSON path, certificate days and response time."""

from __future__ import annotations

import pytest

from services.checks.assertions import (
    cert_error,
    evaluate_http,
    evaluate_response_time,
    json_path_error,
    status_error,
    validate_json_path,
)
from services.checks.failures import describe_timeout
from services.checks.spec import MAX_ERROR_CHARS, Assertions, Outcome

BODY = '{"status": "ok", "version": 3, "ready": true, "checks": [{"name": "db", "ok": true}]}'


def verdict(assertions: Assertions, *, status_code=200, elapsed_ms=10.0, body=BODY, days=None):
    return evaluate_http(
        assertions,
        status_code=status_code,
        elapsed_ms=elapsed_ms,
        body=body,
        cert_days_left=days,
    )


def test_defaults_accept_a_fast_200():
    assert verdict(Assertions()) == ("up", "")


def test_wrong_status_is_down():
    assert verdict(Assertions(), status_code=500) == ("down", "expected status 200, got 500")


def test_status_list_names_every_expected_status():
    assert status_error((200, 204), 500) == "expected status 200/204, got 500"
    assert status_error((200, 204), 204) is None


@pytest.mark.parametrize(("code", "ok"), [(200, True), (301, True), (399, True), (404, False)])
def test_empty_status_list_means_any_2xx_or_3xx(code, ok):
    assert (status_error((), code) is None) is ok


def test_slow_but_otherwise_fine_is_degraded():
    status, error = verdict(Assertions(max_response_time_ms=100), elapsed_ms=250.4)

    assert status == "degraded"
    assert error == "response time 250 ms exceeds 100 ms"


def test_a_failure_beats_slowness():
    status, _ = verdict(Assertions(max_response_time_ms=100), status_code=503, elapsed_ms=900)

    assert status == "down"


def test_response_time_exactly_at_the_limit_is_up():
    assert evaluate_response_time(Assertions(max_response_time_ms=100), 100.0) == ("up", "")


def test_body_contains_and_not_contains():
    assert verdict(Assertions(body_contains='"ok"'))[0] == "up"
    assert verdict(Assertions(body_contains="OK")) == ("down", 'body does not contain "OK"')
    assert verdict(Assertions(body_not_contains="error"))[0] == "up"
    assert verdict(Assertions(body_not_contains="ready")) == ("down", 'body contains "ready"')


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.status", "ok"),
        ("$.version", 3),
        ("$.version", "3"),  # forms store text: "3" matches the number 3
        ("$.ready", True),
        ("$.ready", "true"),
        ("$.checks[0].name", "db"),
        ("$.checks[?(@.name == 'db')].ok", True),
        ("$.status", None),  # None: the path only has to match
    ],
)
def test_json_path_matches(path, expected):
    assert json_path_error(Assertions(json_path=path, json_expected=expected), BODY) is None


def test_json_path_mismatch_names_both_values():
    error = json_path_error(Assertions(json_path="$.version", json_expected=4), BODY)

    assert error == "json path $.version is 3, expected 4"


def test_json_true_does_not_equal_one():
    error = json_path_error(Assertions(json_path="$.ready", json_expected=1), BODY)

    assert error == "json path $.ready is true, expected 1"


def test_json_path_matching_nothing_is_down():
    error = json_path_error(Assertions(json_path="$.nope"), BODY)

    assert error == "json path $.nope matched nothing"


def test_json_path_on_non_json_body_is_down():
    assert json_path_error(Assertions(json_path="$.status"), "<html>") == "body is not valid JSON"


@pytest.mark.parametrize("expr", ["$.status", "$..name", "$.checks[*].ok", "$[?(@.a > 1)]"])
def test_validate_json_path_accepts_well_formed(expr):
    assert validate_json_path(expr) is None


@pytest.mark.parametrize("expr", ["$.[", "$..", "status ok now", "$[?(@.a >"])
def test_validate_json_path_rejects_malformed(expr):
    message = validate_json_path(expr)

    assert message is not None
    assert message.startswith(f"invalid JSON path {expr!r}")


def test_malformed_json_path_in_a_check_is_down_not_a_crash():
    status, error = verdict(Assertions(json_path="$.["))

    assert status == "down"
    assert error.startswith("invalid JSON path")


@pytest.mark.parametrize(
    ("min_days", "days_left", "error"),
    [
        (None, 3, None),
        (14, None, None),
        (14, 15, None),
        (14, 14, "certificate expires in 14 days"),
        (14, 1, "certificate expires in 1 day"),
        (14, 0, "certificate expires in 0 days"),
        (14, -2, "certificate expired 2 days ago"),
    ],
)
def test_cert_min_days(min_days, days_left, error):
    assert cert_error(min_days, days_left) == error


def test_cert_expiry_fails_an_http_check():
    assert verdict(Assertions(cert_min_days=30), days=7) == (
        "down",
        "certificate expires in 7 days",
    )


@pytest.mark.parametrize(
    ("timeout", "message"),
    [(2, "timeout after 2.0s"), (0.5, "timeout after 0.5s"), (0.25, "timeout after 0.25s")],
)
def test_timeout_message(timeout, message):
    assert describe_timeout(timeout) == message


def test_outcome_error_is_capped():
    outcome = Outcome.down("x" * 2000)

    assert len(outcome.error) == MAX_ERROR_CHARS
