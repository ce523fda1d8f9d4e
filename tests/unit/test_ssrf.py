"""The SSRF address policy and the pinning resolver, without any network: an
egress guard refuses every connect and DNS lookup for the whole module."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from cadenza.adapters.http.resolver import PinningResolver
from cadenza.adapters.http.ssrf import (
    AddressPolicy,
    blocked_reason,
    normalise_host,
    parse_legacy_ipv4,
)
from cadenza.domain.errors import UnsafeTarget
from cadenza.testing.dispatch import EgressGuard, StaticResolver


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    with EgressGuard() as guard:
        yield
    assert guard.violations == []


DEFAULT = AddressPolicy()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.255.0.9/", "loopback"),
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1/", "127.0.0.1 is a loopback address"),
        ("http://0X7F.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.1/", "127.0.0.1 is a loopback address"),
        ("http://127.0.1/", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1./", "loopback"),
        ("http://017700000001/", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://[0:0:0:0:0:0:0:1]/", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "is an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1"),
        ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1"),
        ("http://[::ffff:a9fe:a9fe]/", "form of 169.254.169.254, a cloud metadata address"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:808:808 is an IPv4-mapped address"),
        ("http://[2002:808:808::1]/", "2002:808:808::1 is a 6to4 address"),
        ("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
        ("http://169.254.170.2/", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://metadata.google.internal/", "metadata.google.internal is a cloud metadata"),
        ("http://Metadata.Google.Internal./", "cloud metadata host name"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://172.16.0.1/", "a private address"),
        ("http://172.31.255.255/", "a private address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://[fc00::1]/", "unique-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://[::]/", "the unspecified address"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://192.0.2.1/", "documentation"),
        ("http://198.51.100.7/", "documentation"),
        ("http://203.0.113.9/", "documentation"),
        ("http://[2001:db8::1]/", "documentation"),
        ("http://198.18.0.1/", "benchmarking"),
        ("http://[64:ff9b::a00:1]/", "NAT64 form of 10.0.0.1"),
        ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1"),
        ("http://[2002:a00:1::]/", "6to4 form of 10.0.0.1"),
        ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1"),
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo form of 127.0.0.1"),
        ("http://256.0.0.1/", "malformed numeric IPv4"),
        ("http://0x100000000/", "malformed numeric IPv4"),
        ("http://1.2.3.4.5/", None),  # not numeric: a (bogus) host name, left to DNS
        ("http://08.0.0.1/", "not a valid octal"),
        ("ftp://example.com/", "scheme 'ftp' is not http or https"),
    ],
)
def test_hostile_urls_are_refused_with_a_reason(url, reason):
    if reason is None:
        DEFAULT.check_url(url)
        return
    with pytest.raises(UnsafeTarget) as refused:
        DEFAULT.check_url(url)
    assert reason in refused.value.message


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_are_allowed(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.2", "10.1.0.2"),
        ("0xa.0x0.0x0.0x1", "10.0.0.1"),
        ("3232235777", "192.168.1.1"),
    ],
)
def test_legacy_ipv4_spellings_read_as_libc_reads_them(host, address):
    assert parse_legacy_ipv4(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "1.example", "0x7g.1", "", "1..1"])
def test_names_are_not_mistaken_for_addresses(host):
    assert parse_legacy_ipv4(host) is None


def test_hosts_are_normalised_before_deciding():
    assert normalise_host("[FE80::1%25eth0]") == ipaddress.ip_address("fe80::1")
    assert normalise_host("Example.COM.") == "example.com"
    assert normalise_host("0x7f.1") == ipaddress.ip_address("127.0.0.1")


def test_a_cidr_on_the_allowlist_opens_its_addresses_only():
    policy = AddressPolicy.from_allowlist(["10.1.0.0/16", "::1"])

    policy.check_url("http://10.1.2.3/")
    policy.check_url("http://[::1]:8080/")
    with pytest.raises(UnsafeTarget):
        policy.check_url("http://10.2.0.1/")
    with pytest.raises(UnsafeTarget):
        policy.check_url("http://127.0.0.1/")


def test_a_broad_allowlist_does_not_open_a_metadata_address():
    policy = AddressPolicy.from_allowlist(["169.254.0.0/16", "100.64.0.0/10"])

    policy.check_url("http://169.254.10.10/")
    policy.check_url("http://100.100.100.100/")
    with pytest.raises(UnsafeTarget, match="cloud metadata"):
        policy.check_url("http://169.254.169.254/")
    with pytest.raises(UnsafeTarget, match="cloud metadata"):
        policy.check_url("http://100.100.100.200/")


def test_an_allowlisted_range_does_not_open_an_embedded_metadata_address():
    policy = AddressPolicy.from_allowlist(["::ffff:0:0/96"])

    with pytest.raises(UnsafeTarget, match="cloud metadata"):
        policy.check_url("http://[::ffff:169.254.169.254]/")


def test_an_exact_allowlist_entry_opens_a_metadata_address():
    AddressPolicy.from_allowlist(["169.254.169.254"]).check_url("http://169.254.169.254/")


def test_an_allowlisted_host_name_opens_that_name_only():
    policy = AddressPolicy.from_allowlist(["Hooks.Internal."])

    policy.check_address(ipaddress.ip_address("10.0.0.9"), "hooks.internal")
    with pytest.raises(UnsafeTarget):
        policy.check_address(ipaddress.ip_address("10.0.0.9"), "other.internal")
    with pytest.raises(UnsafeTarget):
        policy.check_address(ipaddress.ip_address("10.0.0.9"))


@pytest.mark.anyio
async def test_the_resolver_returns_only_allowed_addresses():
    stub = StaticResolver({"mixed.test": ["10.0.0.1", "93.184.216.34", "::1"]})
    resolver = PinningResolver(DEFAULT, stub)

    answers = await resolver.resolve("mixed.test", 443)

    assert [a["host"] for a in answers] == ["93.184.216.34"]
    assert stub.lookups == ["mixed.test"]  # resolved once


@pytest.mark.anyio
async def test_the_resolver_refuses_a_name_with_only_refused_addresses():
    resolver = PinningResolver(DEFAULT, StaticResolver({"evil.test": ["127.0.0.1", "::1"]}))

    with pytest.raises(UnsafeTarget, match=r"evil\.test resolves only to refused addresses"):
        await resolver.resolve("evil.test", 80)


@pytest.mark.anyio
async def test_the_resolver_refuses_metadata_names_without_asking_dns():
    stub = StaticResolver({"metadata.google.internal": ["8.8.8.8"]})
    resolver = PinningResolver(DEFAULT, stub)

    with pytest.raises(UnsafeTarget, match="cloud metadata host name"):
        await resolver.resolve("metadata.google.internal", 80)
    assert stub.lookups == []


@pytest.mark.anyio
async def test_localhost_names_are_loopback_without_asking_dns():
    stub = StaticResolver({})
    allowlisted = PinningResolver(AddressPolicy.from_allowlist(["127.0.0.1"]), stub)

    answers = await allowlisted.resolve("api.localhost", 80)

    assert [a["host"] for a in answers] == ["127.0.0.1"]
    with pytest.raises(UnsafeTarget, match="loopback"):
        await PinningResolver(DEFAULT, stub).resolve("localhost", 80)
    assert stub.lookups == []


@pytest.mark.anyio
async def test_the_resolver_checks_legacy_spellings_as_addresses():
    resolver = PinningResolver(DEFAULT, StaticResolver({}))

    with pytest.raises(UnsafeTarget, match="loopback"):
        await resolver.resolve("0x7f.1", 80)
