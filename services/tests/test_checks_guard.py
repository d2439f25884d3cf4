"""The address guard: every refused range, IPv4 hidden in IPv6, URLs, resolution, aiohttp hooks."""

from __future__ import annotations

import asyncio
import socket

import pytest

from services.checks.guard import (
    AddressRefused,
    GuardedResolver,
    guarded_socket_factory,
    refusal_reason,
    resolve_checked,
    validate_url_target,
)

ALWAYS_REFUSED = [
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("169.254.255.255", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("febf:ffff::1", "link-local"),
    # IPv4 hidden in IPv6 reaches the IPv4 address: it is judged as that address.
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:a9fe:101", "link-local"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64
    ("2002:a9fe:a9fe::1", "cloud metadata"),  # 6to4
    ("::a9fe:a9fe", "cloud metadata"),  # IPv4-compatible
    ("::169.254.169.254", "cloud metadata"),
    ("::a9fe:101", "link-local"),
    ("::ffff:0:a9fe:a9fe", "cloud metadata"),  # IPv4-translated (SIIT)
    ("2001:0:a9fe:a9fe::1", "cloud metadata"),  # Teredo server
    ("2001:0:4136:e378:8000:63bf:5601:5601", "cloud metadata"),  # Teredo client (xor-ed)
    ("2001:db8::5efe:a9fe:a9fe", "cloud metadata"),  # ISATAP interface identifier
    ("2001:db8::200:5efe:a9fe:a9fe", "cloud metadata"),  # ISATAP, universal bit set
    ("64:ff9b:1::a9fe:a9fe", "cloud metadata"),  # local-use NAT64, /96
    ("64:ff9b:1:a9fe:a9:fe00::", "cloud metadata"),  # local-use NAT64, /48
    ("64:ff9b:1:0:a9:fea9:fe00:0", "cloud metadata"),  # local-use NAT64, /64
    ("::ffff:a9fe:a9fe%eth0", "cloud metadata"),
]

REFUSED_UNLESS_PRIVATE = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.7", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("::7f00:1", "loopback"),  # IPv4-compatible
    ("::ffff:0:7f00:1", "loopback"),  # IPv4-translated
    ("64:ff9b::a00:1", "private"),  # NAT64
    ("2002:a00:1::1", "private"),  # 6to4
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),  # Teredo client 10.0.0.1
    ("2001:db8::5efe:c0a8:101", "private"),  # ISATAP
    ("64:ff9b:1::808:808", "special-purpose"),  # local-use NAT64: where the IPv4 sits varies
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "special-purpose"),  # documentation
    ("198.18.0.1", "special-purpose"),  # benchmarking
    ("2001:db8::1", "special-purpose"),  # documentation
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "::808:808",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: server 65.54.227.120, client 8.8.8.8
]


@pytest.mark.parametrize(("ip", "reason"), ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [True, False])
def test_metadata_and_link_local_are_always_refused(ip, reason, allow_private):
    assert refusal_reason(ip, allow_private=allow_private) == reason


@pytest.mark.parametrize(("ip", "reason"), REFUSED_UNLESS_PRIVATE)
def test_special_ranges_are_refused_unless_private_targets_are_allowed(ip, reason):
    assert refusal_reason(ip, allow_private=False) == reason
    assert refusal_reason(ip, allow_private=True) is None


@pytest.mark.parametrize("ip", PUBLIC)
@pytest.mark.parametrize("allow_private", [True, False])
def test_public_addresses_are_allowed(ip, allow_private):
    assert refusal_reason(ip, allow_private=allow_private) is None


def test_a_non_address_is_refused():
    assert refusal_reason("example.com", allow_private=True) == "not an IP address"


@pytest.mark.parametrize(
    ("url", "allow_private", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", True, "169.254.169.254 is refused"),
        ("http://[::ffff:169.254.169.254]/", True, "is refused (cloud metadata)"),
        ("http://[fe80::1]:8080/", True, "is refused (link-local)"),
        ("http://[::a9fe:a9fe]/", True, "::a9fe:a9fe is refused (cloud metadata)"),
        ("http://[64:ff9b::7f00:1]/", False, "is refused (loopback)"),
        ("http://127.0.0.1:8000/health", False, "127.0.0.1 is refused (loopback)"),
        ("http://2130706433/", False, "127.0.0.1 is refused (loopback)"),  # decimal form
        ("http://0x7f.1/", False, "127.0.0.1 is refused (loopback)"),  # hex shorthand
        ("https://10.0.0.5/", False, "10.0.0.5 is refused (private)"),
        ("ftp://example.com/", True, "URL scheme must be http or https"),
        ("http:///nohost", True, "URL has no host"),
    ],
)
def test_validate_url_target_refuses(url, allow_private, reason):
    assert reason in validate_url_target(url, allow_private=allow_private)


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        ("https://example.com/health", False),  # names are checked when resolved, not saved
        ("http://localhost:8000/", False),
        ("http://127.0.0.1:8000/health", True),
        ("https://8.8.8.8/", False),
        ("http://deadbeef.example/", False),
    ],
)
def test_validate_url_target_accepts(url, allow_private):
    assert validate_url_target(url, allow_private=allow_private) is None


def test_resolve_checked_returns_allowed_addresses():
    addresses = asyncio.run(resolve_checked("localhost", 80, allow_private=True))

    assert "127.0.0.1" in addresses


def test_resolve_checked_refuses_a_name_resolving_to_loopback():
    with pytest.raises(AddressRefused, match=r"localhost resolves to refused address .*loopback"):
        asyncio.run(resolve_checked("localhost", 80, allow_private=False))


def test_resolve_checked_checks_a_literal_directly():
    with pytest.raises(AddressRefused, match="cloud metadata") as refused:
        asyncio.run(resolve_checked("169.254.169.254", 80, allow_private=True))

    assert refused.value.reason == "cloud metadata"
    assert refused.value.address == "169.254.169.254"


def test_guarded_resolver_returns_only_checked_addresses():
    async def resolve(allow_private: bool):
        resolver = GuardedResolver(allow_private=allow_private)
        try:
            return await resolver.resolve("localhost", 80, family=socket.AF_INET)
        finally:
            await resolver.close()

    results = asyncio.run(resolve(True))
    assert [r["host"] for r in results] == ["127.0.0.1"]
    assert results[0]["port"] == 80

    with pytest.raises(AddressRefused, match="loopback"):
        asyncio.run(resolve(False))


def test_guarded_socket_factory_checks_the_exact_address():
    factory = guarded_socket_factory(allow_private=True)
    metadata = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))
    loopback = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))

    with pytest.raises(AddressRefused, match="cloud metadata"):
        factory(metadata)
    with factory(loopback) as sock:
        assert sock.family == socket.AF_INET
    with pytest.raises(AddressRefused, match="loopback"):
        guarded_socket_factory(allow_private=False)(loopback)


def test_guarded_socket_factory_judges_ipv4_hidden_in_ipv6():
    compatible = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::a9fe:a9fe", 80, 0, 0))

    with pytest.raises(AddressRefused, match="cloud metadata"):
        guarded_socket_factory(allow_private=True)(compatible)


def test_address_refused_is_an_os_error_with_a_readable_message():
    error = AddressRefused("10.0.0.1", "private", host="db.internal")

    assert isinstance(error, OSError)
    assert str(error) == "db.internal resolves to refused address 10.0.0.1 (private)"
