"""Test kit for the ``Dispatcher`` port and outbound HTTP.

* ``FakeDispatcher`` plays scripted outcomes per endpoint id or URL and records
  every call; it passes the same contract tests as ``HttpDispatcher``.
* ``StaticResolver`` maps host names to addresses, so tests resolve names without
  DNS (give it to ``HttpDispatcher(resolver=...)``).
* ``EgressGuard`` refuses, at the socket level, any connection or datagram to a
  non-loopback address and any DNS lookup of an unknown name. It never performs
  the refused operation and records it, so a fixture can fail the test: even a
  broken SSRF guard cannot send a packet off the machine.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import ipaddress
import socket
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from cadenza.domain.model import Endpoint, ResponseCapture, RunStatus
from cadenza.ports import Clock, DispatchResult


@dataclass(frozen=True, slots=True)
class Outcome:
    """A scripted result; the fake fills in the times. ``duration`` passes on the
    clock (a ``FrozenClock`` advances without real waiting)."""

    status: RunStatus = RunStatus.SUCCESS
    http_status: int | None = 200
    error: str = ""
    response: ResponseCapture | None = None
    attempts: int = 1
    retry_after: timedelta | None = None
    duration: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class DispatchCall:
    endpoint: Endpoint
    scheduled_for: datetime
    at: datetime


@dataclass
class FakeDispatcher:
    """Scripted ``Dispatcher``. Outcomes queued for an endpoint id take precedence
    over those queued for its URL; each queue plays in order and its last outcome
    repeats. Without a script every call gets ``default``."""

    clock: Clock
    default: Outcome = field(default_factory=Outcome)
    calls: list[DispatchCall] = field(default_factory=list)
    closed: bool = False
    _scripts: dict[str, deque[Outcome]] = field(default_factory=dict)

    def script(self, key: str, *outcomes: Outcome) -> None:
        """Queue outcomes for an endpoint id or a request URL."""
        self._scripts.setdefault(key, deque()).extend(outcomes)

    def _next(self, endpoint: Endpoint) -> Outcome:
        for key in (endpoint.id, endpoint.request.url):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft() if len(queue) > 1 else queue[0]
        return self.default

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        if self.closed:
            raise RuntimeError("FakeDispatcher is closed")
        started_at = self.clock.now()
        self.calls.append(DispatchCall(endpoint, scheduled_for, started_at))
        outcome = self._next(endpoint)
        await self.clock.sleep(outcome.duration.total_seconds())
        return DispatchResult(
            status=outcome.status,
            started_at=started_at,
            finished_at=started_at + outcome.duration,
            http_status=outcome.http_status,
            error=outcome.error,
            response=outcome.response,
            attempts=outcome.attempts,
            retry_after=outcome.retry_after,
        )

    async def close(self) -> None:
        self.closed = True


class StaticResolver(AbstractResolver):
    """Resolves names from a fixed table; unknown names fail like NXDOMAIN."""

    def __init__(self, table: Mapping[str, Iterable[str]]) -> None:
        self.table = {name.lower(): list(addresses) for name, addresses in table.items()}
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        addresses = self.table.get(host.lower().removesuffix("."))
        if not addresses:
            raise OSError(socket.EAI_NONAME, f"{host} is not in the test resolver's table")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class EgressBlocked(ConnectionRefusedError):
    """Raised instead of a refused connect or lookup; nothing was sent."""


def is_loopback(address: Any) -> bool:
    """Whether a socket address stays on this machine (loopback or a Unix path)."""
    if not isinstance(address, tuple):
        return True
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _require_stdlib_loop() -> None:
    """uvloop connects in C, below the patched ``socket`` methods: refuse to guard it
    rather than pretend to."""
    try:
        loop: object = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    stdlib = asyncio.selector_events.BaseSelectorEventLoop
    if (loop is not None and not isinstance(loop, stdlib)) or type(
        asyncio.get_event_loop_policy()
    ).__module__.startswith("uvloop"):
        raise RuntimeError("EgressGuard only guards the standard asyncio event loop")


class EgressGuard:
    """Patches ``socket`` and asyncio so only loopback traffic is possible.

    ``names`` answers lookups of host names (numeric hosts resolve locally without
    DNS); any other name is refused. ``connects`` lists every connect attempt,
    allowed or not; ``violations`` describes the refused ones. Use as a context
    manager; the patches are undone on exit.
    """

    def __init__(self, names: Mapping[str, Iterable[str]] | None = None) -> None:
        self.names = {k.lower(): list(v) for k, v in (names or {}).items()}
        self.connects: list[Any] = []
        self.violations: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self.real_connect: Callable[..., Any] = socket.socket.connect
        self.real_getaddrinfo: Callable[..., Any] = socket.getaddrinfo

    def _refuse(self, what: str) -> EgressBlocked:
        self.violations.append(what)
        return EgressBlocked(f"egress guard refused {what}")

    def check(self, address: Any) -> None:
        self.connects.append(address)
        if not is_loopback(address):
            raise self._refuse(f"a connection to {address!r}")

    def _getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        """Numeric hosts and table names only, always with AI_NUMERICHOST: no DNS."""
        lookup = self.real_getaddrinfo
        numeric = flags | socket.AI_NUMERICHOST
        if host is None:
            return lookup(host, port, family, type, proto, flags)
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() in self.names:
            return [
                info
                for address in self.names[name.lower()]
                for info in lookup(address, port, family, type, proto, numeric)
            ]
        try:
            return lookup(name, port, family, type, proto, numeric)
        except socket.gaierror:
            raise self._refuse(f"a DNS lookup of {name!r}") from None

    def _patch(self, owner: Any, attribute: str, replacement: Any) -> None:
        original = owner.__dict__.get(attribute)
        setattr(owner, attribute, replacement)
        if original is None:
            self._undo.append(lambda: delattr(owner, attribute))
        else:
            self._undo.append(lambda: setattr(owner, attribute, original))

    def __enter__(self) -> EgressGuard:
        _require_stdlib_loop()
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(address)
            guard.real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(address)
            return int(real_connect_ex(sock, address))

        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            address = args[-1]
            if not is_loopback(address):
                raise guard._refuse(f"a datagram to {address!r}")
            return int(real_sendto(sock, data, *args))

        async def sock_connect(loop: Any, sock: socket.socket, address: Any) -> None:
            guard.check(address)
            # The plain socket patch checks again; count this attempt once.
            guard.connects.pop()
            await real_sock_connect(loop, sock, address)

        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto
        real_sock_connect = asyncio.selector_events.BaseSelectorEventLoop.sock_connect
        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket.socket, "sendto", sendto)
        self._patch(socket, "getaddrinfo", self._getaddrinfo)
        self._patch(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", sock_connect)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._undo:
            self._undo.pop()()
