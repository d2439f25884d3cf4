"""TCP engine against a real local listener and a closed port."""

from __future__ import annotations

import pytest

from services.checks.spec import CheckSpec
from services.checks.testing import check_once, closed_port, serve_tcp


@pytest.fixture(scope="module")
def listener_port():
    with serve_tcp() as port:
        yield port


def tcp(host: str, port: int, **kwargs) -> CheckSpec:
    kwargs.setdefault("timeout", 5.0)
    return CheckSpec(kind="tcp", host=host, port=port, **kwargs)


def test_open_port_is_up_with_connect_time(listener_port):
    outcome = check_once(tcp("127.0.0.1", listener_port))

    assert outcome.status == "up", outcome.error
    assert outcome.response_time_ms is not None
    assert 0 <= outcome.response_time_ms < 5000
    assert outcome.details["address"] == "127.0.0.1"


def test_hostname_is_resolved_then_connected(listener_port):
    outcome = check_once(tcp("localhost", listener_port))

    # localhost may resolve to ::1 first; the engine falls through to 127.0.0.1.
    assert outcome.status == "up", outcome.error
    assert outcome.details["address"] == "127.0.0.1"


def test_closed_port_is_down_with_connection_refused():
    outcome = check_once(tcp("127.0.0.1", closed_port()))

    assert outcome.status == "down"
    assert outcome.error == "connection refused"
    assert outcome.response_time_ms is None


def test_retries_are_counted_on_a_closed_port():
    outcome = check_once(tcp("127.0.0.1", closed_port(), retries=2))

    assert outcome.status == "down"
    assert outcome.details["attempts"] == 3


def test_loopback_is_refused_when_private_targets_are_not_allowed(listener_port):
    outcome = check_once(tcp("127.0.0.1", listener_port, allow_private=False))

    assert outcome.status == "down"
    assert outcome.error == "address 127.0.0.1 is refused (loopback)"
    assert outcome.details["refused"] == "loopback"


def test_metadata_address_is_always_refused():
    outcome = check_once(tcp("169.254.169.254", 80, allow_private=True))

    assert outcome.error == "address 169.254.169.254 is refused (cloud metadata)"


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_invalid_port_is_down(port):
    outcome = check_once(tcp("127.0.0.1", port))

    assert outcome.status == "down"
    assert outcome.error == f"invalid port {port}"
