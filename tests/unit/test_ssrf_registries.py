"""The SSRF guard against the IANA special-purpose address registries, entry by entry.

The tables here are written out from the registries independently of the guard's
own: each entry with an address that only it holds and its "Globally Reachable"
flag ("N/A" counts as not reachable). Every IPv6 form that embeds an IPv4 address
is checked for every IPv4 entry. An egress guard refuses any connect or lookup for
the whole module, so a broken policy cannot reach the network from here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

import pytest

from cadenza.adapters.http.ssrf import AddressPolicy, blocked_reason
from cadenza.domain.errors import UnsafeTarget
from cadenza.testing.dispatch import EgressGuard

V4, V6 = ipaddress.IPv4Address, ipaddress.IPv6Address


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    with EgressGuard() as guard:
        yield
    assert guard.violations == []


IPV4_REGISTRY = [  # (block, an address only this entry holds, globally reachable)
    ("0.0.0.0/8", "0.1.2.3", False),
    ("0.0.0.0/32", "0.0.0.0", False),
    ("10.0.0.0/8", "10.20.30.40", False),
    ("100.64.0.0/10", "100.127.255.254", False),
    ("127.0.0.0/8", "127.10.0.1", False),
    ("169.254.0.0/16", "169.254.10.20", False),
    ("172.16.0.0/12", "172.20.1.1", False),
    ("192.0.0.0/24", "192.0.0.100", False),
    ("192.0.0.0/29", "192.0.0.1", False),
    ("192.0.0.8/32", "192.0.0.8", False),
    ("192.0.0.9/32", "192.0.0.9", True),
    ("192.0.0.10/32", "192.0.0.10", True),
    ("192.0.0.170/32", "192.0.0.170", False),
    ("192.0.0.171/32", "192.0.0.171", False),
    ("192.0.2.0/24", "192.0.2.77", False),
    ("192.31.196.0/24", "192.31.196.1", True),
    ("192.52.193.0/24", "192.52.193.5", True),
    ("192.88.99.0/24", "192.88.99.1", False),
    ("192.168.0.0/16", "192.168.100.1", False),
    ("192.175.48.0/24", "192.175.48.6", True),
    ("198.18.0.0/15", "198.19.255.1", False),
    ("198.51.100.0/24", "198.51.100.7", False),
    ("203.0.113.0/24", "203.0.113.9", False),
    ("240.0.0.0/4", "250.1.2.3", False),
    ("255.255.255.255/32", "255.255.255.255", False),
]

IPV6_REGISTRY = [
    ("::1/128", "::1", False),
    ("::/128", "::", False),
    ("::ffff:0:0/96", "::ffff:8.8.8.8", False),
    ("64:ff9b::/96", "64:ff9b::808:808", True),
    ("64:ff9b:1::/48", "64:ff9b:1:abcd::1", False),
    ("100::/64", "100::1", False),
    ("2001::/23", "2001:100::1", False),
    ("2001::/32", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", False),  # Teredo: N/A
    ("2001:1::1/128", "2001:1::1", True),
    ("2001:1::2/128", "2001:1::2", True),
    ("2001:1::3/128", "2001:1::3", True),
    ("2001:2::/48", "2001:2::1", False),
    ("2001:3::/32", "2001:3::1", True),
    ("2001:4:112::/48", "2001:4:112::1", True),
    ("2001:10::/28", "2001:10::1", False),  # deprecated ORCHID: N/A
    ("2001:20::/28", "2001:20::1", True),
    ("2001:30::/28", "2001:30::1", True),
    ("2001:db8::/32", "2001:db8::1", False),
    ("2002::/16", "2002:808:808::1", False),  # 6to4: N/A
    ("2620:4f:8000::/48", "2620:4f:8000::1", True),
    ("3fff::/20", "3fff::1", False),
    ("5f00::/16", "5f00::1", False),
    ("fc00::/7", "fd12::1", False),
    ("fe80::/10", "fe80::1", False),
]

BEYOND_THE_REGISTRIES = [
    ("224.0.0.0/4 (IPv4 multicast)", "239.1.1.1", False),
    ("ff00::/8 (IPv6 multicast)", "ff02::1", False),
    ("fec0::/10 (deprecated site-local)", "fec0::1", False),
    ("::/8 outside 2000::/3", "::2:1", False),
    ("4000::/3 outside 2000::/3", "4000::1", False),
    ("100:0:0:1::/64 outside 2000::/3", "100:0:0:1::1", False),
    ("public IPv4", "8.8.8.8", True),
    ("public IPv6", "2606:4700:4700::1111", True),
]

ENTRIES = IPV4_REGISTRY + IPV6_REGISTRY + BEYOND_THE_REGISTRIES


@pytest.mark.parametrize(("block", "sample", "reachable"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_each_registry_entry_decides_its_own_addresses(
    block: str, sample: str, reachable: bool
) -> None:
    assert (blocked_reason(ipaddress.ip_address(sample)) is None) == reachable


UNREACHABLE_BLOCKS = [(block, ok) for block, _, ok in IPV4_REGISTRY + IPV6_REGISTRY if not ok]


@pytest.mark.parametrize(
    ("block", "_ok"), UNREACHABLE_BLOCKS, ids=[b for b, _ in UNREACHABLE_BLOCKS]
)
def test_the_first_and_last_address_of_each_unreachable_block_are_refused(
    block: str, _ok: bool
) -> None:
    network = ipaddress.ip_network(block)
    for address in (network[0], network[-1]):
        assert blocked_reason(address) is not None, address


Embed = Callable[[V4], V6]
TEREDO_SERVER = int(V4("65.54.227.120"))
GLOBAL_PREFIX = int(V6("2a00:1450:4001:81a::"))

EMBEDDINGS: dict[str, Embed] = {
    "an IPv4-mapped": lambda v4: V6(0xFFFF << 32 | int(v4)),
    "an IPv4-translated": lambda v4: V6(0xFFFF << 48 | int(v4)),
    "an IPv4-compatible": lambda v4: V6(int(v4)),
    "a NAT64": lambda v4: V6(0x64FF9B << 96 | int(v4)),
    "a local-use NAT64": lambda v4: V6(
        0x64FF9B0001 << 80 | (int(v4) >> 16) << 64 | (int(v4) & 0xFFFF) << 40
    ),
    "a 6to4": lambda v4: V6(0x2002 << 112 | int(v4) << 80),
    "a Teredo": lambda v4: V6(
        0x20010000 << 96 | TEREDO_SERVER << 64 | 0x8000 << 48 | (int(v4) ^ 0xFFFFFFFF)
    ),
    "an ISATAP": lambda v4: V6(GLOBAL_PREFIX | 0x5EFE << 32 | int(v4)),
}
# The IPv6 forms that are themselves globally reachable when what they embed is.
REACHABLE_FORMS = {"a NAT64", "an ISATAP"}

REFUSED_V4 = [sample for _, sample, ok in IPV4_REGISTRY if not ok]
REACHABLE_V4 = [sample for _, sample, ok in IPV4_REGISTRY if ok] + ["8.8.8.8"]


@pytest.mark.parametrize("mechanism", EMBEDDINGS)
@pytest.mark.parametrize("sample", REFUSED_V4)
def test_every_ipv6_form_of_a_refused_ipv4_address_is_refused_naming_it(
    mechanism: str, sample: str
) -> None:
    inner = V4(sample)
    address = EMBEDDINGS[mechanism](inner)
    reason = blocked_reason(address)
    assert reason is not None, address
    if int(address) > 1:  # "::" and "::1" are themselves, not compatible forms
        assert reason.startswith(f"{address} is {mechanism} form of {inner}, "), reason
        assert reason.count(" is ") == 1, reason


@pytest.mark.parametrize("mechanism", EMBEDDINGS)
@pytest.mark.parametrize("sample", REACHABLE_V4)
def test_ipv6_forms_of_a_reachable_ipv4_address_follow_their_own_registry_entry(
    mechanism: str, sample: str
) -> None:
    address = EMBEDDINGS[mechanism](V4(sample))
    assert (blocked_reason(address) is None) == (mechanism in REACHABLE_FORMS), address


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://[fd12::1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2001:db8::1]/",
        "http://0x7f000001/",
    ],
)
def test_literal_hosts_in_refused_ranges_are_refused_by_url(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        AddressPolicy().check_url(url)


def test_an_allowlisted_range_opens_its_refused_addresses() -> None:
    policy = AddressPolicy.from_allowlist(["fd12::/16", "192.0.0.0/24"])
    policy.check_url("http://[fd12::1]/")
    policy.check_url("http://192.0.0.100/")
    with pytest.raises(UnsafeTarget):
        policy.check_url("http://[fd13::1]/")
