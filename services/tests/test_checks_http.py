"""HTTP engine against real local servers: statuses, timing, redirects, TLS and assertions."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.checks.context import CheckContext
from services.checks.engine import run_one
from services.checks.http import USER_AGENT
from services.checks.spec import Assertions, CheckSpec
from services.checks.testing import (
    PEERS,
    check_once,
    closed_port,
    serve_http,
    tls_certificates,
)


@pytest.fixture(scope="module")
def server():
    with serve_http() as running:
        yield running


@pytest.fixture(scope="module")
def certs():
    return tls_certificates()


@pytest.fixture(scope="module")
def https_server(certs):
    with serve_http(certs.server) as running:
        yield running


def http(url: str, **kwargs) -> CheckSpec:
    kwargs.setdefault("timeout", 5.0)
    return CheckSpec(kind="http", url=url, **kwargs)


# -- status and timing ---------------------------------------------------------------------------


def test_healthy_endpoint_is_up(server):
    outcome = check_once(http(server.url("/ok")))

    assert outcome.status == "up", outcome.error
    assert outcome.status_code == 200
    assert outcome.error == ""
    assert 0 < outcome.response_time_ms < 5000
    assert outcome.details["address"] == "127.0.0.1"
    assert outcome.details["attempts"] == 1


def test_slower_than_max_response_time_is_degraded(server):
    spec = http(server.url("/slow?seconds=0.3"), assertions=Assertions(max_response_time_ms=100))

    outcome = check_once(spec)

    assert outcome.status == "degraded"
    assert outcome.status_code == 200
    assert outcome.response_time_ms >= 300
    assert "exceeds 100 ms" in outcome.error


def test_unexpected_status_is_down_with_the_status(server):
    outcome = check_once(http(server.url("/status/503")))

    assert outcome.status == "down"
    assert outcome.status_code == 503
    assert outcome.error == "expected status 200, got 503"
    assert outcome.response_time_ms is not None


def test_a_listed_expected_status_is_up(server):
    spec = http(server.url("/status/201"), assertions=Assertions(expected_status=(200, 201)))

    assert check_once(spec).status == "up"


def test_empty_expected_status_accepts_any_2xx_or_3xx(server):
    any_ok = Assertions(expected_status=())

    assert check_once(http(server.url("/status/204"), assertions=any_ok)).status == "up"
    outcome = check_once(http(server.url("/status/404"), assertions=any_ok))
    assert outcome.status == "down"
    assert outcome.error == "expected a 2xx or 3xx status, got 404"


def test_slow_endpoint_times_out(server):
    started = time.monotonic()

    outcome = check_once(http(server.url("/slow?seconds=3"), timeout=0.5))

    assert outcome.status == "down"
    assert outcome.error == "timeout after 0.5s"
    assert outcome.response_time_ms is None
    assert time.monotonic() - started < 5


def test_a_body_slower_than_the_timeout_times_out_without_a_body_assertion(server):
    # The headers come at once, the body never in time: the attempt's deadline covers the
    # body a check drains as well as the one it reads.
    spec = http(server.url("/stream?chunks=3&pause=1"), timeout=0.5)

    outcome = check_once(spec)

    assert outcome.status == "down"
    assert outcome.error == "timeout after 0.5s"


def test_closed_port_is_connection_refused():
    outcome = check_once(http(f"http://127.0.0.1:{closed_port()}/"))

    assert outcome.status == "down"
    assert outcome.error == "connection refused"


def test_unresolvable_host_is_down_with_a_dns_message():
    outcome = check_once(http("http://no-such-host.invalid/"))

    assert outcome.status == "down"
    assert outcome.error.startswith("DNS lookup failed")


# -- retries -------------------------------------------------------------------------------------


def test_retries_until_the_endpoint_recovers(server):
    outcome = check_once(http(server.url("/flaky/recovers?fail=2"), retries=2))

    assert outcome.status == "up"
    assert outcome.details["attempts"] == 3


def test_exhausted_retries_stay_down(server):
    outcome = check_once(http(server.url("/flaky/stays-down?fail=5"), retries=1))

    assert outcome.status == "down"
    assert outcome.status_code == 503
    assert outcome.details["attempts"] == 2


# -- redirects and the address guard ------------------------------------------------------------


def test_redirects_are_followed_and_counted(server):
    outcome = check_once(http(server.url("/redirect/3")))

    assert outcome.status == "up"
    assert outcome.details["redirects"] == 3
    assert outcome.details["final_url"] == server.url("/ok")


def test_redirects_not_followed_report_the_redirect_itself(server):
    spec = http(server.url("/redirect/3"), follow_redirects=False)

    outcome = check_once(spec)
    assert outcome.status == "down"
    assert outcome.error == "expected status 200, got 302"

    allowed = http(
        server.url("/redirect/3"),
        follow_redirects=False,
        assertions=Assertions(expected_status=(301, 302)),
    )
    assert check_once(allowed).status == "up"


def test_more_than_ten_redirects_is_down(server):
    outcome = check_once(http(server.url("/redirect/12")))

    assert outcome.status == "down"
    assert outcome.error == "too many redirects"


def test_redirect_to_cloud_metadata_is_refused_and_not_retried(server):
    target = "http://169.254.169.254/latest/meta-data/"
    spec = http(server.url(f"/redirect-to?url={target}"), retries=2)

    outcome = check_once(spec)

    assert outcome.status == "down"
    assert outcome.error == "address 169.254.169.254 is refused (cloud metadata)"
    assert outcome.details["refused"] == "cloud metadata"
    assert outcome.details["attempts"] == 1


def test_redirect_to_a_mapped_metadata_address_is_refused(server):
    target = "http://[::ffff:169.254.169.254]/"

    outcome = check_once(http(server.url(f"/redirect-to?url={target}")))

    assert outcome.status == "down"
    assert "is refused (cloud metadata)" in outcome.error


def test_loopback_literal_is_refused_when_private_targets_are_not_allowed(server):
    outcome = check_once(http(server.url("/ok"), allow_private=False))

    assert outcome.status == "down"
    assert outcome.error == "address 127.0.0.1 is refused (loopback)"


def test_loopback_hostname_is_refused_when_private_targets_are_not_allowed(server):
    outcome = check_once(http(server.url("/ok", host="localhost"), allow_private=False))

    assert outcome.status == "down"
    assert outcome.error.startswith("localhost resolves to refused address")
    assert outcome.error.endswith("(loopback)")


def test_metadata_literal_is_refused_even_when_private_targets_are_allowed():
    outcome = check_once(http("http://169.254.169.254/", allow_private=True))

    assert outcome.error == "address 169.254.169.254 is refused (cloud metadata)"


def test_a_refused_literal_stays_refused_for_strict_checks_after_allowed_ones(server):
    # The guard's per-address answers are cached: per allow_private, never across it.
    allowed = check_once(http(server.url("/ok"), allow_private=True))
    strict = check_once(http(server.url("/ok"), allow_private=False))

    assert allowed.status == "up", allowed.error
    assert strict.error == "address 127.0.0.1 is refused (loopback)"
    assert strict.details["refused"] == "loopback"


# -- request shape --------------------------------------------------------------------------------


def test_default_user_agent_is_sent(server):
    spec = http(server.url("/echo"), assertions=Assertions(body_contains=USER_AGENT))

    assert check_once(spec).status == "up"


def test_spec_header_overrides_the_user_agent(server):
    spec = http(
        server.url("/echo"),
        headers=(("user-agent", "probe/2"), ("X-Token", "abc")),
        assertions=Assertions(body_contains='"probe/2"', body_not_contains="NOC-Monitor"),
    )

    outcome = check_once(spec)

    assert outcome.status == "up", outcome.error


def test_method_and_body_are_sent(server):
    sent = http(
        server.url("/echo"),
        method="post",
        body="ping",
        assertions=Assertions(json_path="$.body", json_expected="ping"),
    )
    method = http(
        server.url("/echo"),
        method="PUT",
        assertions=Assertions(json_path="$.method", json_expected="PUT"),
    )

    assert check_once(sent).status == "up"
    assert check_once(method).status == "up"


# -- body assertions -----------------------------------------------------------------------------


def test_body_contains(server):
    found = http(server.url("/text"), assertions=Assertions(body_contains="All systems nominal"))
    missing = http(server.url("/text"), assertions=Assertions(body_contains="Maintenance"))

    assert check_once(found).status == "up"
    outcome = check_once(missing)
    assert outcome.status == "down"
    assert outcome.error == 'body does not contain "Maintenance"'


def test_body_not_contains(server):
    spec = http(server.url("/text"), assertions=Assertions(body_not_contains="nominal"))

    outcome = check_once(spec)

    assert outcome.status == "down"
    assert outcome.error == 'body contains "nominal"'


def test_a_body_no_assertion_reads_is_drained_and_its_connection_kept(server):
    # Without a body assertion the body is not kept, but it must be read off the connection,
    # or the connection could not serve the next check.
    async def twice():
        async with CheckContext() as ctx:
            spec = http(server.url("/stream?chunks=4&size=65536&pause=0.02"))
            return [await run_one(spec, ctx) for _ in range(2)]

    server.app[PEERS].clear()
    outcomes = asyncio.run(twice())

    assert [o.status for o in outcomes] == ["up", "up"], outcomes[0].error
    assert len(server.app[PEERS]) == 1


def test_a_streamed_body_is_read_whole_for_a_keyword(server):
    spec = http(
        server.url("/stream?chunks=3&size=1000&pause=0.02"),
        assertions=Assertions(body_contains="x" * 3000, body_not_contains="x" * 3001),
    )

    assert check_once(spec).status == "up"


def test_json_path_match(server):
    spec = http(server.url("/ok"), assertions=Assertions(json_path="$.status", json_expected="ok"))

    assert check_once(spec).status == "up"


def test_json_path_mismatch(server):
    assertions = Assertions(json_path="$.status", json_expected="degraded")

    outcome = check_once(http(server.url("/ok"), assertions=assertions))

    assert outcome.status == "down"
    assert outcome.error == 'json path $.status is "ok", expected "degraded"'


def test_json_path_that_matches_nothing(server):
    outcome = check_once(http(server.url("/ok"), assertions=Assertions(json_path="$.missing")))

    assert outcome.status == "down"
    assert outcome.error == "json path $.missing matched nothing"


def test_json_path_on_a_body_that_is_not_json(server):
    outcome = check_once(http(server.url("/text"), assertions=Assertions(json_path="$.status")))

    assert outcome.error == "body is not valid JSON"


# -- TLS -----------------------------------------------------------------------------------------


def test_untrusted_certificate_is_down_when_verifying(https_server):
    outcome = check_once(http(https_server.url("/ok")))

    assert outcome.status == "down"
    assert outcome.error.startswith("certificate verify failed:")


def test_untrusted_certificate_is_up_without_verification(https_server):
    outcome = check_once(http(https_server.url("/ok"), verify_tls=False))

    assert outcome.status == "up", outcome.error


def test_trusted_certificate_reports_days_left(https_server, certs):
    spec = http(https_server.url("/ok"), assertions=Assertions(cert_min_days=14))

    outcome = check_once(spec, ssl_context=certs.client)

    assert outcome.status == "up", outcome.error
    assert outcome.details["cert_days_left"] > 14


def test_self_signed_certificate_verify_on_and_off():
    with serve_http(tls_certificates(self_signed=True).server) as self_signed:
        verified = check_once(http(self_signed.url("/ok")))
        unverified = check_once(http(self_signed.url("/ok"), verify_tls=False))

    assert verified.status == "down"
    assert verified.error == "certificate verify failed: self-signed certificate"
    assert unverified.status == "up", unverified.error


def test_certificate_expiring_within_min_days_is_down():
    with serve_http(tls_certificates(valid_days=5).server) as short_lived:
        url = short_lived.url("/ok")
        expiring = check_once(http(url, verify_tls=False, assertions=Assertions(cert_min_days=10)))
        fine = check_once(http(url, verify_tls=False, assertions=Assertions(cert_min_days=2)))

    assert expiring.status == "down"
    assert expiring.error == "certificate expires in 4 days"
    assert expiring.details["cert_days_left"] == 4
    assert fine.status == "up", fine.error
