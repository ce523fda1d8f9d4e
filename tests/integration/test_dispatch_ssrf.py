"""The SSRF guard end to end: hostile targets and redirects are refused before any
connection, under a socket-level egress guard that fails the test on any
non-loopback connect or DNS lookup, so a broken guard cannot send a packet."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import aiohttp
import pytest

from cadenza.adapters.http.loop import install_uvloop
from cadenza.domain.model import RunStatus
from cadenza.testing.dispatch import EgressBlocked, EgressGuard, StaticResolver

pytestmark = pytest.mark.anyio

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SSRF = "refused by the SSRF guard: "
_REAL_GETADDRINFO = socket.getaddrinfo

# Names a hostile user could point an endpoint at; never looked up in real DNS.
HOSTILE_NAMES = {
    "internal.test": ["10.0.0.5"],
    "rebind.test": ["192.168.0.10", "fd00::1"],
    "mapped.test": ["::ffff:169.254.169.254"],
}

HOSTILE_URLS = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://app.localhost/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://127.0.0.1.:8080/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.GOOGLE.INTERNAL./",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:a00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.2.1/",
    "http://198.18.0.1/",
    "https://10.0.0.1:8443/",
    "http://internal.test/",
    "http://rebind.test/",
    "http://mapped.test/",
]


@pytest.fixture
def guard(no_egress: EgressGuard) -> EgressGuard:
    no_egress.names.update(HOSTILE_NAMES)
    return no_egress


@pytest.mark.parametrize("url", HOSTILE_URLS)
async def test_a_hostile_target_is_refused_without_any_connection(
    url, guard, endpoint_for, make_dispatcher
):
    # Loopback is NOT allowlisted here, and names resolve only through the stub.
    dispatcher = make_dispatcher(allowlist=[], resolver=StaticResolver(HOSTILE_NAMES))

    result = await dispatcher.dispatch(endpoint_for(url), SLOT)

    assert result.status is RunStatus.ERROR
    assert result.error.startswith(SSRF), result.error
    assert len(result.error) > len(SSRF) + 5
    assert result.attempts == 1  # a refusal is final, never retried
    assert guard.connects == []


async def test_a_refusal_is_repeated_for_every_run_of_the_same_request(
    guard, endpoint_for, make_dispatcher
):
    # The verdict on a URL is kept per request; each run must still be refused.
    dispatcher = make_dispatcher(allowlist=[], resolver=StaticResolver(HOSTILE_NAMES))
    endpoint = endpoint_for("http://0x7f.1/")

    results = [await dispatcher.dispatch(endpoint, SLOT) for _ in range(3)]

    assert [r.error for r in results] == [SSRF + "127.0.0.1 is a loopback address"] * 3
    assert guard.connects == []


async def test_every_new_connection_to_a_name_is_resolved_and_checked_again(
    http_target, guard, endpoint_for, make_dispatcher
):
    # What is cached per request must not skip the pinned check: a name that turns
    # hostile between runs (DNS rebinding) is refused on the next connection.
    port = http_target.base.rsplit(":", 1)[1]
    resolver = StaticResolver({"flip.test": ["127.0.0.1"]})
    dispatcher = make_dispatcher(resolver=resolver)
    # A truncated capture drops its connection, so the next run must connect anew.
    endpoint = endpoint_for(f"http://flip.test:{port}/huge")

    first = await dispatcher.dispatch(endpoint, SLOT)
    resolver.table["flip.test"] = ["10.0.0.9"]
    second = await dispatcher.dispatch(endpoint, SLOT)

    assert first.status is RunStatus.SUCCESS
    assert first.response is not None
    assert first.response.truncated
    assert second.error == (
        SSRF + "flip.test resolves only to refused addresses (10.0.0.9 is a private address)"
    )
    assert resolver.lookups == ["flip.test", "flip.test"]


async def test_the_reason_names_the_kind_of_address(endpoint_for, make_dispatcher, guard):
    dispatcher = make_dispatcher(allowlist=[], resolver=StaticResolver(HOSTILE_NAMES))

    metadata = await dispatcher.dispatch(endpoint_for("http://169.254.169.254/"), SLOT)
    named = await dispatcher.dispatch(endpoint_for("http://internal.test/"), SLOT)
    encoded = await dispatcher.dispatch(endpoint_for("http://0177.0.0.1/"), SLOT)

    assert metadata.error == SSRF + "169.254.169.254 is a cloud metadata address"
    assert named.error == (
        SSRF + "internal.test resolves only to refused addresses (10.0.0.5 is a private address)"
    )
    assert encoded.error == SSRF + "127.0.0.1 is a loopback address"


async def test_the_same_loopback_target_is_allowed_once_allowlisted(
    http_target, guard, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/ok"))

    refused = await make_dispatcher(allowlist=[]).dispatch(endpoint, SLOT)
    allowed = await make_dispatcher(allowlist=["127.0.0.1/32"]).dispatch(endpoint, SLOT)

    assert refused.status is RunStatus.ERROR
    assert refused.error.startswith(SSRF)
    assert allowed.status is RunStatus.SUCCESS
    assert http_target.hits["/ok"] == 1


async def test_an_allowlisted_host_name_may_resolve_to_a_private_address(
    http_target, guard, endpoint_for, make_dispatcher
):
    port = http_target.base.rsplit(":", 1)[1]
    resolver = StaticResolver({"hooks.internal.test": ["127.0.0.1"]})
    dispatcher = make_dispatcher(allowlist=["hooks.internal.test"], resolver=resolver)

    result = await dispatcher.dispatch(endpoint_for(f"http://hooks.internal.test:{port}/ok"), SLOT)

    assert result.status is RunStatus.SUCCESS
    assert resolver.lookups == ["hooks.internal.test"]


async def test_only_the_allowed_addresses_of_a_name_are_connected_to(
    http_target, guard, endpoint_for, make_dispatcher
):
    port = int(http_target.base.rsplit(":", 1)[1])
    resolver = StaticResolver({"mixed.test": ["10.0.0.7", "127.0.0.1"]})
    dispatcher = make_dispatcher(resolver=resolver)  # 127.0.0.1/32 allowlisted

    result = await dispatcher.dispatch(endpoint_for(f"http://mixed.test:{port}/ok"), SLOT)

    assert result.status is RunStatus.SUCCESS
    assert guard.connects == [("127.0.0.1", port)]


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:{port}/ok",
        "http://0x7f.2:{port}/ok",
        "http://internal.test/",
        "http://metadata.google.internal/",
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused_before_connecting(
    location, http_target, guard, endpoint_for, make_dispatcher
):
    port = http_target.base.rsplit(":", 1)[1]
    hop = location.format(port=port).replace("?", "%3F")
    dispatcher = make_dispatcher(resolver=StaticResolver(HOSTILE_NAMES))

    result = await dispatcher.dispatch(endpoint_for(http_target.url(f"/redirect?to={hop}")), SLOT)

    assert result.status is RunStatus.ERROR
    assert result.error.startswith(SSRF), result.error
    assert http_target.hits["/redirect"] == 1
    assert http_target.hits["/ok"] == 0
    # Exactly one connection: to the allowlisted server that sent the redirect.
    assert guard.connects == [("127.0.0.1", int(port))]


async def test_a_redirect_to_a_non_http_scheme_is_refused(
    http_target, guard, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/redirect?to=file:///etc/passwd"))

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.ERROR
    assert result.error == SSRF + "redirect to a file URL"


# The guard's own tests: it must stop traffic even when nothing else does.


def test_the_guard_refuses_a_raw_connect_to_a_private_address_without_performing_it(
    no_egress,
):
    performed: list[object] = []
    no_egress.real_connect = lambda sock, address: performed.append(address)

    with socket.socket() as sock, pytest.raises(EgressBlocked):
        sock.connect(("10.0.0.1", 80))

    assert performed == []
    assert no_egress.violations == ["a connection to ('10.0.0.1', 80)"]
    no_egress.violations.clear()  # expected here; otherwise teardown fails the test


def test_the_guard_refuses_connect_ex_and_dns_lookups(no_egress):
    with socket.socket() as sock, pytest.raises(EgressBlocked):
        sock.connect_ex(("192.168.1.1", 80))
    with pytest.raises(EgressBlocked):
        socket.getaddrinfo("example.com", 80)

    assert len(no_egress.violations) == 2
    no_egress.violations.clear()


async def test_the_guard_stops_an_unguarded_aiohttp_client(no_egress):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get("http://10.0.0.1/", timeout=aiohttp.ClientTimeout(total=2))

    assert no_egress.violations == ["a connection to ('10.0.0.1', 80)"]
    no_egress.violations.clear()


async def test_the_guard_stops_asyncio_open_connection(no_egress):
    with pytest.raises(EgressBlocked):
        await asyncio.open_connection("172.16.0.1", 80)

    assert no_egress.violations
    no_egress.violations.clear()


async def test_the_guard_lets_loopback_through(http_target, no_egress):
    async with aiohttp.ClientSession() as session, session.get(http_target.url("/ok")) as response:
        assert await response.text() == "hello"

    assert no_egress.violations == []


def test_the_guard_undoes_its_patches():
    before = (socket.socket.connect, socket.getaddrinfo)
    with EgressGuard():
        assert socket.getaddrinfo is not before[1]
    assert (socket.socket.connect, socket.getaddrinfo) == before


def test_the_guard_refuses_to_run_under_uvloop_whose_connects_it_cannot_see():
    assert install_uvloop()
    try:
        with pytest.raises(RuntimeError, match="standard asyncio"), EgressGuard():
            pass
    finally:
        asyncio.set_event_loop_policy(None)
    assert socket.getaddrinfo is _REAL_GETADDRINFO  # nothing was patched
