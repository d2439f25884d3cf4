"""TLS engine against real local TLS listeners with trustme and short-lived certificates."""

from __future__ import annotations

import pytest

from services.checks.spec import Assertions, CheckSpec
from services.checks.testing import check_once, closed_port, serve_tcp, tls_certificates


@pytest.fixture(scope="module")
def certs():
    return tls_certificates()


@pytest.fixture(scope="module")
def tls_port(certs):
    with serve_tcp(certs.server) as port:
        yield port


def tls(port: int, host: str = "127.0.0.1", **kwargs) -> CheckSpec:
    kwargs.setdefault("timeout", 5.0)
    return CheckSpec(kind="tls", host=host, port=port, **kwargs)


def test_trusted_certificate_is_up_with_days_left(tls_port, certs):
    outcome = check_once(tls(tls_port), ssl_context=certs.client)

    assert outcome.status == "up", outcome.error
    assert outcome.response_time_ms is not None
    assert outcome.details["cert_days_left"] > 30
    assert outcome.details["tls_version"].startswith("TLS")
    assert outcome.details["address"] == "127.0.0.1"


def test_hostname_is_verified_against_the_certificate(tls_port, certs):
    outcome = check_once(tls(tls_port, host="localhost"), ssl_context=certs.client)

    assert outcome.status == "up", outcome.error


def test_untrusted_certificate_is_down_but_days_left_are_reported(tls_port):
    outcome = check_once(tls(tls_port))

    assert outcome.status == "down"
    assert outcome.error.startswith("certificate verify failed:")
    assert outcome.details["cert_days_left"] > 30


def test_untrusted_certificate_is_up_without_verification(tls_port):
    outcome = check_once(tls(tls_port, verify_tls=False))

    assert outcome.status == "up", outcome.error
    assert "cert_days_left" in outcome.details


def test_self_signed_certificate_is_down_when_verifying():
    with serve_tcp(tls_certificates(self_signed=True).server) as port:
        outcome = check_once(tls(port))

    assert outcome.status == "down"
    assert outcome.error == "certificate verify failed: self-signed certificate"


def test_certificate_for_another_name_is_down():
    certs = tls_certificates(identities=("localhost",))
    with serve_tcp(certs.server) as port:
        outcome = check_once(tls(port, host="127.0.0.1"), ssl_context=certs.client)

    assert outcome.status == "down"
    assert outcome.error.startswith("certificate verify failed:")
    assert "mismatch" in outcome.error


def test_certificate_expiring_within_min_days_is_down():
    certs = tls_certificates(valid_days=5)
    with serve_tcp(certs.server) as port:
        expiring = check_once(
            tls(port, assertions=Assertions(cert_min_days=10)), ssl_context=certs.client
        )
        fine = check_once(
            tls(port, assertions=Assertions(cert_min_days=3)), ssl_context=certs.client
        )

    assert expiring.status == "down"
    assert expiring.error == "certificate expires in 4 days"
    assert expiring.details["cert_days_left"] == 4
    assert expiring.response_time_ms is not None
    assert fine.status == "up", fine.error


def test_plain_tcp_listener_fails_the_handshake():
    with serve_tcp() as port:
        outcome = check_once(tls(port, verify_tls=False))

    assert outcome.status == "down"
    assert outcome.error


def test_closed_port_is_connection_refused():
    outcome = check_once(tls(closed_port()))

    assert outcome.error == "connection refused"


def test_loopback_is_refused_when_private_targets_are_not_allowed(tls_port):
    outcome = check_once(tls(tls_port, allow_private=False))

    assert outcome.error == "address 127.0.0.1 is refused (loopback)"
