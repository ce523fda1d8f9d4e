"""A DNS resolver for aiohttp that pins each connection to addresses the policy allows.

aiohttp asks its resolver once per new connection (the connector runs with its DNS
cache off) and connects only to the addresses returned. Filtering here means the
address that was checked is the address that is connected to: a name cannot
resolve to a public address for the check and to ``127.0.0.1`` for the connect
(DNS rebinding), because there is only one resolution.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from cadenza.adapters.http.ssrf import AddressPolicy, normalise_host
from cadenza.domain.errors import UnsafeTarget

# RFC 6761: these names are loopback by definition; answer without asking DNS.
_LOOPBACK_ANSWERS = ("127.0.0.1", "::1")


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


class PinningResolver(AbstractResolver):
    """Resolves through ``inner`` once and returns only the allowed addresses.

    Raises ``UnsafeTarget`` when the name itself is refused or when no resolved
    address is allowed; the reason names the first refused address.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = normalise_host(host)
        if not isinstance(name, str):
            # aiohttp hands literal addresses straight to connect; a legacy spelling
            # that reaches us is still an address, never a name to look up.
            self._policy.check_address(name)
            return [_result(host, str(name), port)]
        self._policy.check_hostname(name)
        if _is_localhost(name):
            answers = [_result(host, address, port) for address in _LOOPBACK_ANSWERS]
        else:
            answers = await self._inner.resolve(host, port, family)
        return self._allowed(name, answers)

    def _allowed(self, name: str, answers: list[ResolveResult]) -> list[ResolveResult]:
        allowed: list[ResolveResult] = []
        first_refusal: UnsafeTarget | None = None
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer["host"].split("%", 1)[0])
                self._policy.check_address(address, name)
            except (UnsafeTarget, ValueError) as exc:
                refusal = exc if isinstance(exc, UnsafeTarget) else UnsafeTarget(str(exc))
                first_refusal = first_refusal or refusal
                continue
            allowed.append(answer)
        if not allowed:
            if first_refusal is None:
                raise UnsafeTarget(f"{name} resolved to no address")
            raise UnsafeTarget(
                f"{name} resolves only to refused addresses ({first_refusal.message})"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _result(hostname: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return {
        "hostname": hostname,
        "host": address,
        "port": port,
        "family": family,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }
