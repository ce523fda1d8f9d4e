"""The SSRF address policy: which hosts and addresses an outbound request may reach.

Contract (SCHEDULING.md §4): every address that is not globally reachable is refused,
as the IANA IPv4 and IPv6 special-purpose registries say (``special_addresses``:
loopback, private, link-local, CGNAT, multicast, reserved, documentation, benchmarking,
discard, IPv4-mapped …), and so are cloud-metadata targets; every IPv6 form that
embeds an IPv4 address (mapped, translated, compatible, NAT64, 6to4, Teredo, ISATAP)
is judged by that address too, and the legacy IPv4 spellings that libc's
``inet_aton`` accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are read
as libc reads them. Hosts are normalised the way a resolver would read them *before*
deciding, so a spelling cannot slip past.

An allowlist of CIDRs and host names opens specific targets. A cloud-metadata
address is only opened by an allowlist entry naming exactly that address: opening
``169.254.0.0/16`` for a link-local device must not also expose instance credentials.

The policy is pure (no IO). ``cadenza.adapters.http.resolver`` applies it to the
addresses DNS returns, so the address checked is the address connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from yarl import URL

from cadenza.adapters.http.special_addresses import (
    IPAddress,
    IPNetwork,
    embedded_ipv4,
    unreachable,
)
from cadenza.domain.errors import UnsafeTarget

__all__ = [
    "METADATA_HOSTNAMES",
    "AddressPolicy",
    "IPAddress",
    "IPNetwork",
    "blocked_reason",
    "embedded_ipv4",
    "is_metadata",
    "normalise_host",
    "parse_legacy_ipv4",
]


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), label) for cidr, label in pairs)


# Checked before the generic ranges so the reason names the real danger.
_METADATA = _nets(
    ("169.254.169.254/32", "a cloud metadata address"),
    ("169.254.170.2/32", "a cloud metadata address (ECS task credentials)"),
    ("100.100.100.200/32", "a cloud metadata address (Alibaba Cloud)"),
    ("168.63.129.16/32", "a cloud metadata address (Azure WireServer)"),
    ("fd00:ec2::254/128", "a cloud metadata address (AWS IPv6)"),
    ("fd20:ce::254/128", "a cloud metadata address (GCP IPv6)"),
)

# Names that metadata services answer on inside clouds, whatever DNS says elsewhere.
METADATA_HOSTNAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` the way ``inet_aton`` does: 1–4 dot-separated parts, each
    decimal, octal (leading ``0``) or hex (``0x``); the last part fills the
    remaining bytes. Returns ``None`` when ``host`` is not numeric at all.

    Raises ``UnsafeTarget`` for numeric-looking hosts that overflow: libc would
    reject them, but WHATWG parsers and some resolvers read them differently, so
    the only safe answer is no.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_is_number(p) for p in parts):
        return None
    values = [_parse_number(p) for p in parts]
    last_bits = 8 * (5 - len(values))
    if any(v > 0xFF for v in values[:-1]) or values[-1] >= 1 << last_bits:
        raise UnsafeTarget(f"{host!r} is a malformed numeric IPv4 address")
    packed = 0
    for value in values[:-1]:
        packed = (packed << 8) | value
    packed = (packed << last_bits) | values[-1]
    return ipaddress.IPv4Address(packed)


def _is_number(part: str) -> bool:
    if part[:2].lower() == "0x":
        digits = part[2:]
        return all(c in "0123456789abcdefABCDEF" for c in digits)
    return part.isascii() and part.isdigit()


def _parse_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if any(c in "89" for c in part):
            raise UnsafeTarget(f"{part!r} is not a valid octal IPv4 component")
        return int(part, 8)
    return int(part)


def normalise_host(raw_host: str) -> IPAddress | str:
    """The address a URL host denotes, or the lower-cased host name without its
    trailing dot. Strips IPv6 brackets and zone ids (``%25eth0``)."""
    host = unquote(raw_host).strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.removesuffix(".")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise UnsafeTarget(f"{raw_host!r} is not a valid IPv6 address") from None
    legacy = parse_legacy_ipv4(host)
    return legacy if legacy is not None else host


def is_metadata(address: IPAddress) -> bool:
    """Whether ``address`` is, or embeds, a cloud metadata address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None and is_metadata(embedded[0]):
            return True
    return any(address.version == net.version and address in net for net, _ in _METADATA)


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is refused by default ("10.0.0.1 is a private address"), or
    ``None`` when it is globally reachable. An IPv6 form that carries a refused
    IPv4 address is refused for that address, and says so ("::ffff:127.0.0.1 is an
    IPv4-mapped form of 127.0.0.1, a loopback address")."""
    label = _kind(address)
    return None if label is None else f"{address} is {label}"


def _kind(address: IPAddress) -> str | None:
    for net, label in _METADATA:
        if address.version == net.version and address in net:
            return label
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        inner_kind = None if embedded is None else _kind(embedded[0])
        if embedded is not None and inner_kind is not None:
            return f"{embedded[1]} form of {embedded[0]}, {inner_kind}"
    return unreachable(address)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Refuses non-public targets unless the allowlist opens them.

    ``allowlist`` entries are CIDRs (``10.1.0.0/16``), single addresses or host names
    (``hooks.internal``, matched exactly, case-insensitively). An allowlisted host
    name may resolve to any address, since the operator vouched for the name.
    """

    networks: tuple[IPNetwork, ...] = ()
    hostnames: frozenset[str] = frozenset()

    @classmethod
    def from_allowlist(cls, entries: Iterable[str]) -> AddressPolicy:
        networks: list[IPNetwork] = []
        hostnames: set[str] = set()
        for entry in entries:
            text = entry.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                hostnames.add(text.lower().removesuffix("."))
        return cls(tuple(networks), frozenset(hostnames))

    def host_allowlisted(self, hostname: str) -> bool:
        return hostname.lower().removesuffix(".") in self.hostnames

    def check_address(self, address: IPAddress, hostname: str = "") -> None:
        """Raise ``UnsafeTarget`` unless ``address`` (reached via ``hostname``) is allowed."""
        if hostname and self.host_allowlisted(hostname):
            return
        reason = blocked_reason(address)
        if reason is None:
            return
        metadata = is_metadata(address)
        for net in self.networks:
            if address.version != net.version or address not in net:
                continue
            if not metadata or net.num_addresses == 1:
                return
        raise UnsafeTarget(reason)

    def check_url(self, url: str | URL) -> IPAddress | str:
        """Validate a URL before connecting: scheme, host spelling, literal addresses
        and metadata names. Returns the normalised host; names still need their
        resolved addresses checked (the pinning resolver does that)."""
        parsed = url if isinstance(url, URL) else URL(url)
        if parsed.scheme not in ("http", "https"):
            raise UnsafeTarget(f"scheme {parsed.scheme!r} is not http or https")
        if not parsed.raw_host:
            raise UnsafeTarget("the URL has no host")
        host = normalise_host(parsed.raw_host)
        if isinstance(host, str):
            self.check_hostname(host)
        else:
            self.check_address(host)
        return host

    def check_hostname(self, hostname: str) -> None:
        """Refuse names that designate metadata services before any DNS query."""
        name = hostname.lower().removesuffix(".")
        if name in METADATA_HOSTNAMES and not self.host_allowlisted(name):
            raise UnsafeTarget(f"{name} is a cloud metadata host name")
