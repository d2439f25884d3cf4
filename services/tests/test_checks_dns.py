"""DNS engine against a tiny local UDP DNS server answering from a dict."""

from __future__ import annotations

import socket
import time

import pytest

from services.checks.dns import parse_server
from services.checks.spec import Assertions, CheckSpec
from services.checks.testing import check_once, serve_dns

RECORDS = {
    ("app.noc.test", "A"): ["10.0.0.5", "10.0.0.6"],
    ("app.noc.test", "TXT"): ['"v=spf1 -all"'],
    ("v6.noc.test", "AAAA"): ["2001:db8::1"],
    ("noc.test", "MX"): ["10 mail.noc.test.", "20 backup-mx.noc.test."],
    ("noc.test", "NS"): ["ns1.noc.test."],
    ("www.noc.test", "CNAME"): ["app.noc.test."],
}


@pytest.fixture(scope="module")
def dns_server():
    with serve_dns(RECORDS) as server:
        yield server


def dns_check(server, name: str, rdtype: str = "A", **kwargs) -> CheckSpec:
    kwargs.setdefault("timeout", 5.0)
    return CheckSpec(
        kind="dns",
        dns_name=name,
        dns_record_type=rdtype,
        dns_server=server.address if server else kwargs.pop("dns_server"),
        **kwargs,
    )


def test_a_record_is_up_with_answers(dns_server):
    outcome = check_once(dns_check(dns_server, "app.noc.test"))

    assert outcome.status == "up", outcome.error
    assert outcome.details["answers"] == ["10.0.0.5", "10.0.0.6"]
    assert outcome.details["nameserver"] == dns_server.address
    assert outcome.response_time_ms is not None


def test_expected_answer_among_answers_is_up(dns_server):
    outcome = check_once(dns_check(dns_server, "app.noc.test", dns_expected="10.0.0.6"))

    assert outcome.status == "up", outcome.error


def test_expected_answer_missing_is_down(dns_server):
    outcome = check_once(dns_check(dns_server, "app.noc.test", dns_expected="10.0.0.9"))

    assert outcome.status == "down"
    assert outcome.error == 'expected "10.0.0.9" not among answers: 10.0.0.5, 10.0.0.6'
    assert outcome.details["answers"] == ["10.0.0.5", "10.0.0.6"]


def test_nxdomain_is_down(dns_server):
    outcome = check_once(dns_check(dns_server, "nope.noc.test"))

    assert outcome.status == "down"
    assert outcome.error == "NXDOMAIN: nope.noc.test does not exist"


def test_no_records_of_the_type_is_down(dns_server):
    outcome = check_once(dns_check(dns_server, "app.noc.test", "AAAA"))

    assert outcome.status == "down"
    assert outcome.error == "no AAAA records for app.noc.test"


def test_aaaa_expected_is_compared_as_an_address(dns_server):
    spec = dns_check(dns_server, "v6.noc.test", "AAAA", dns_expected="2001:DB8:0:0::1")

    assert check_once(spec).status == "up"


def test_mx_expected_names_the_exchange_host(dns_server):
    by_host = dns_check(dns_server, "noc.test", "MX", dns_expected="Backup-MX.noc.test.")
    by_record = dns_check(dns_server, "noc.test", "MX", dns_expected="10 mail.noc.test")

    outcome = check_once(by_host)
    assert outcome.status == "up", outcome.error
    assert outcome.details["answers"] == ["10 mail.noc.test", "20 backup-mx.noc.test"]
    assert check_once(by_record).status == "up"


def test_txt_expected_matches_the_text(dns_server):
    found = dns_check(dns_server, "app.noc.test", "TXT", dns_expected="v=spf1 -all")
    quoted = dns_check(dns_server, "app.noc.test", "TXT", dns_expected='"v=spf1 -all"')
    other = dns_check(dns_server, "app.noc.test", "TXT", dns_expected="v=spf1 ~all")

    assert check_once(found).status == "up"
    assert check_once(quoted).status == "up"
    assert check_once(other).status == "down"


def test_cname_and_ns_answers_are_names(dns_server):
    cname = check_once(dns_check(dns_server, "www.noc.test", "CNAME", dns_expected="app.noc.test"))
    ns = check_once(dns_check(dns_server, "noc.test", "ns"))

    assert cname.status == "up", cname.error
    assert ns.details["answers"] == ["ns1.noc.test"]


def test_slow_answer_is_degraded(dns_server):
    # A negative limit makes every answer "too slow" without sleeping in the test.
    spec = dns_check(dns_server, "app.noc.test", assertions=Assertions(max_response_time_ms=-1))

    outcome = check_once(spec)

    assert outcome.status == "degraded"


def test_silent_nameserver_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        spec = dns_check(None, "app.noc.test", timeout=0.5, dns_server=f"127.0.0.1:{port}")
        outcome = check_once(spec)

    assert outcome.status == "down"
    assert outcome.error == "timeout after 0.5s"
    assert time.monotonic() - started < 5


def test_unsupported_record_type_is_down(dns_server):
    outcome = check_once(dns_check(dns_server, "noc.test", "SRV"))

    assert outcome.error == "unsupported record type 'SRV'"


def test_invalid_server_is_down():
    outcome = check_once(dns_check(None, "noc.test", dns_server="ns.example.com"))

    assert outcome.status == "down"
    assert outcome.error.startswith("invalid DNS server 'ns.example.com'")


def test_loopback_nameserver_is_refused_when_private_targets_are_not_allowed(dns_server):
    queries_before = dns_server.queries

    outcome = check_once(dns_check(dns_server, "app.noc.test", allow_private=False))

    assert outcome.error == "address 127.0.0.1 is refused (loopback)"
    assert dns_server.queries == queries_before  # refused before anything was sent


def test_metadata_nameserver_is_always_refused():
    outcome = check_once(dns_check(None, "noc.test", dns_server="169.254.169.254"))

    assert outcome.error == "address 169.254.169.254 is refused (cloud metadata)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_parse_server(value, expected):
    assert parse_server(value) == expected


@pytest.mark.parametrize("value", ["ns1.example.com", "192.0.2.1:dns", "192.0.2.1:70000"])
def test_parse_server_rejects_garbage(value):
    with pytest.raises(ValueError, match="invalid DNS server"):
        parse_server(value)
