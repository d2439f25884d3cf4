"""DNS checks: does a name resolve, to the expected answer, and how fast."""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdata
import dns.resolver

from services.checks.assertions import evaluate_response_time
from services.checks.failures import describe_timeout
from services.checks.guard import check_address
from services.checks.spec import CheckSpec, Outcome, elapsed_ms

if TYPE_CHECKING:
    from services.checks.context import CheckContext

__all__ = ["RECORD_TYPES", "answer_text", "expected_among", "parse_server", "run_dns"]

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS")
MAX_ANSWERS_SHOWN = 20


async def run_dns(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    rdtype = spec.dns_record_type.upper()
    if rdtype not in RECORD_TYPES:
        return Outcome.down(f"unsupported record type {spec.dns_record_type!r}")
    try:
        resolver, details = _resolver(spec, ctx)
    except ValueError as exc:
        return Outcome.down(str(exc))
    except dns.exception.DNSException as exc:  # no /etc/resolv.conf on this worker
        return Outcome.down(_describe(exc, spec, rdtype))
    started = time.perf_counter()
    try:
        answer = await resolver.resolve(spec.dns_name, rdtype, lifetime=spec.timeout, search=False)
    except dns.exception.DNSException as exc:
        return Outcome.down(_describe(exc, spec, rdtype), details=details)
    response_time = elapsed_ms(started)
    # An RRset is a set: sort (by wire form, so MX by preference) for stable details.
    answers = [answer_text(rdata) for rdata in sorted(answer)]
    details["answers"] = answers[:MAX_ANSWERS_SHOWN]
    return _verdict(spec, rdtype, answers, response_time, details)


def _verdict(
    spec: CheckSpec, rdtype: str, answers: list[str], response_time: float, details: dict
) -> Outcome:
    if spec.dns_expected and not expected_among(spec.dns_expected, answers, rdtype):
        shown = ", ".join(answers[:5])
        error = f'expected "{spec.dns_expected}" not among answers: {shown}'
        return Outcome.down(error, response_time_ms=response_time, details=details)
    status, error = evaluate_response_time(spec.assertions, response_time)
    return Outcome(status, response_time, None, error, details)


def _resolver(spec: CheckSpec, ctx: CheckContext) -> tuple[dns.asyncresolver.Resolver, dict]:
    if not spec.dns_server:
        return ctx.dns_resolver(), {}
    address, port = parse_server(spec.dns_server)
    # The nameserver is operator input too: it goes through the same guard as any target.
    check_address(address, allow_private=spec.allow_private)
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
    return resolver, {"nameserver": f"{address}:{port}"}


def parse_server(value: str) -> tuple[str, int]:
    """ "ip", "ip:port", "[ipv6]:port" or a bare IPv6 address -> (ip, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    try:
        ip = str(ipaddress.ip_address(host))
        number = int(port) if port else 53
    except ValueError:
        raise ValueError(f"invalid DNS server {value!r}: expected ip or ip:port") from None
    if not 0 < number < 65536:
        raise ValueError(f"invalid DNS server port {number}")
    return ip, number


def answer_text(rdata: dns.rdata.Rdata) -> str:
    """One answer as an operator would write it (no trailing dots, lowercase names)."""
    rdtype = rdata.rdtype.name  # type: ignore[attr-defined]
    if rdtype in ("A", "AAAA"):
        return str(ipaddress.ip_address(rdata.address))  # type: ignore[attr-defined]
    if rdtype == "MX":
        return f"{rdata.preference} {_name(rdata.exchange)}"  # type: ignore[attr-defined]
    if rdtype in ("CNAME", "NS"):
        return _name(rdata.target)  # type: ignore[attr-defined]
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    return rdata.to_text()


def expected_among(expected: str, answers: list[str], rdtype: str) -> bool:
    """Whether `expected` is one of `answers`, compared as the record type demands."""
    want = _normalized(expected, rdtype)
    for answer in answers:
        # An MX expectation names the exchange host; "10 mail.example.com" also works.
        candidates = {answer, answer.split(" ", 1)[-1]} if rdtype == "MX" else {answer}
        if want in candidates:
            return True
    return False


def _normalized(value: str, rdtype: str) -> str:
    value = value.strip()
    if rdtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if rdtype == "TXT":
        # TXT is data, not a name: only the quoting an operator may have typed goes.
        return value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return " ".join(value.lower().rstrip(".").split())


def _name(name: object) -> str:
    return str(name).lower().rstrip(".")


def _describe(exc: dns.exception.DNSException, spec: CheckSpec, rdtype: str) -> str:
    name = spec.dns_name
    if isinstance(exc, dns.exception.Timeout):
        return describe_timeout(spec.timeout)
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return f"NXDOMAIN: {name} does not exist"
    if isinstance(exc, dns.resolver.NoAnswer):
        return f"no {rdtype} records for {name}"
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"no nameserver could answer for {name} (SERVFAIL or refused)"
    if isinstance(exc, dns.resolver.NoResolverConfiguration):
        return "no DNS resolver configured on this worker"
    return f"DNS error: {exc}"
