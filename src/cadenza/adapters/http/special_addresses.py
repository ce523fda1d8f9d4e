"""Which addresses are not globally reachable, after the IANA registries.

``IPV4_SPECIAL`` and ``IPV6_SPECIAL`` restate the IANA IPv4 and IPv6 Special-Purpose
Address Registries (RFC 6890 and its updates, as published in 2025): each block with
its "Globally Reachable" flag. An address takes the flag of the most specific block
that holds it, so ``192.0.0.9`` (PCP anycast, reachable) is allowed inside
``192.0.0.0/24`` (refused). Blocks whose flag reads "N/A" (Teredo, 6to4, the
deprecated ORCHID and 6to4-relay blocks) are not reachable as destinations and are
refused too.

Beyond those registries: IPv4 multicast (``224.0.0.0/4``, the multicast registry) is
refused, and so is every IPv6 address outside ``2000::/3``, the only range the IPv6
Address Space registry allocates as global unicast, unless a special-purpose block
says it is reachable (the NAT64 prefix ``64:ff9b::/96``).

``embedded_ipv4`` finds the IPv4 address inside every IPv6 form that carries one,
so that ``64:ff9b::7f00:1`` is judged as ``127.0.0.1``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Special:
    network: IPNetwork
    label: str
    globally_reachable: bool


def _table(*rows: tuple[str, str, bool]) -> tuple[Special, ...]:
    entries = [Special(ipaddress.ip_network(cidr), label, ok) for cidr, label, ok in rows]
    # Most specific first: the first block that holds an address decides.
    return tuple(sorted(entries, key=lambda e: e.network.prefixlen, reverse=True))


IPV4_SPECIAL = _table(
    ("0.0.0.0/8", "a 'this network' address", False),
    ("0.0.0.0/32", "the unspecified ('this host') address", False),
    ("10.0.0.0/8", "a private address", False),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address", False),
    ("127.0.0.0/8", "a loopback address", False),
    ("169.254.0.0/16", "a link-local address", False),
    ("172.16.0.0/12", "a private address", False),
    ("192.0.0.0/24", "an IETF protocol assignment address", False),
    ("192.0.0.0/29", "an IPv4 service continuity address", False),
    ("192.0.0.8/32", "the IPv4 dummy address", False),
    ("192.0.0.9/32", "the Port Control Protocol anycast address", True),
    ("192.0.0.10/32", "the TURN anycast address", True),
    ("192.0.0.170/32", "a NAT64/DNS64 discovery address", False),
    ("192.0.0.171/32", "a NAT64/DNS64 discovery address", False),
    ("192.0.2.0/24", "a documentation address", False),
    ("192.31.196.0/24", "an AS112 address", True),
    ("192.52.193.0/24", "an AMT address", True),
    ("192.88.99.0/24", "a deprecated 6to4 relay anycast address", False),
    ("192.168.0.0/16", "a private address", False),
    ("192.175.48.0/24", "an AS112 direct delegation address", True),
    ("198.18.0.0/15", "a benchmarking address", False),
    ("198.51.100.0/24", "a documentation address", False),
    ("203.0.113.0/24", "a documentation address", False),
    ("240.0.0.0/4", "a reserved address", False),
    ("255.255.255.255/32", "the limited broadcast address", False),
)

IPV6_SPECIAL = _table(
    ("::1/128", "a loopback address", False),
    ("::/128", "the unspecified address", False),
    ("::ffff:0:0/96", "an IPv4-mapped address", False),
    ("64:ff9b::/96", "a NAT64 (IPv4/IPv6 translation) address", True),
    ("64:ff9b:1::/48", "a local-use IPv4/IPv6 translation address", False),
    ("100::/64", "a discard-only address", False),
    ("2001::/23", "an IETF protocol assignment address", False),
    ("2001::/32", "a Teredo address", False),
    ("2001:1::1/128", "the Port Control Protocol anycast address", True),
    ("2001:1::2/128", "the TURN anycast address", True),
    ("2001:1::3/128", "the DNS-SD service registration anycast address", True),
    ("2001:2::/48", "a benchmarking address", False),
    ("2001:3::/32", "an AMT address", True),
    ("2001:4:112::/48", "an AS112 address", True),
    ("2001:10::/28", "a deprecated ORCHID address", False),
    ("2001:20::/28", "an ORCHIDv2 address", True),
    ("2001:30::/28", "a drone remote ID (DET) address", True),
    ("2001:db8::/32", "a documentation address", False),
    ("2002::/16", "a 6to4 address", False),
    ("2620:4f:8000::/48", "an AS112 direct delegation address", True),
    ("3fff::/20", "a documentation address", False),
    ("5f00::/16", "a segment routing (SRv6) address", False),
    ("fc00::/7", "a unique-local (private) address", False),
    ("fe80::/10", "a link-local address", False),
)

_V4_MULTICAST = ipaddress.IPv4Network("224.0.0.0/4")
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_OUTSIDE = (
    (ipaddress.IPv6Network("ff00::/8"), "a multicast address"),
    (ipaddress.IPv6Network("fec0::/10"), "a deprecated site-local address"),
)
_V6_RESERVED = "an address the IETF reserves (outside 2000::/3, the global unicast range)"


def special_purpose(address: IPAddress) -> Special | None:
    """The most specific special-purpose block holding ``address``, if any."""
    table = IPV4_SPECIAL if address.version == 4 else IPV6_SPECIAL
    return next((entry for entry in table if address in entry.network), None)


def unreachable(address: IPAddress) -> str | None:
    """Why ``address`` is not globally reachable (a label such as "a private
    address"), or ``None`` when it is. Embedded IPv4 addresses are not looked at."""
    entry = special_purpose(address)
    if entry is not None:
        return None if entry.globally_reachable else entry.label
    if isinstance(address, ipaddress.IPv4Address):
        return "a multicast address" if address in _V4_MULTICAST else None
    if address in _V6_GLOBAL_UNICAST:
        return None
    return next((label for net, label in _V6_OUTSIDE if address in net), _V6_RESERVED)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_LOW_32 = 0xFFFFFFFF


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, with the mechanism's name and its
    article ("an IPv4-mapped"): mapped, translated (SIIT), compatible, NAT64 (the
    well-known and local-use prefixes, RFC 6052 and 8215), 6to4, Teredo, ISATAP."""
    value = int(address)
    low = ipaddress.IPv4Address(value & _LOW_32)
    if address in _MAPPED:
        return low, "an IPv4-mapped"
    if address in _TRANSLATED:
        return low, "an IPv4-translated"
    # ``::`` and ``::1`` are themselves, not the compatible forms of 0.0.0.0/0.0.0.1.
    if address in _COMPATIBLE and value > 1:
        return low, "an IPv4-compatible"
    if address in _NAT64:
        return low, "a NAT64"
    if address in _NAT64_LOCAL:
        # RFC 6052 with a /48 prefix: 16 bits, the reserved octet, the other 16 bits.
        packed = ((value >> 64) & 0xFFFF) << 16 | ((value >> 40) & 0xFFFF)
        return ipaddress.IPv4Address(packed), "a local-use NAT64"
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return address.sixtofour, "a 6to4"
    if address in _TEREDO and address.teredo is not None:
        return address.teredo[1], "a Teredo"
    # ISATAP (RFC 5214): an interface id of 00-00-5E-FE (or with the u/g bits set)
    # followed by the IPv4 address, under any prefix.
    if (value >> 32) & 0xFCFFFFFF == 0x00005EFE:
        return low, "an ISATAP"
    return None
