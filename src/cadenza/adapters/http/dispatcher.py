"""``HttpDispatcher``: the ``Dispatcher`` port on aiohttp, behind the SSRF guard.

One run = up to ``retry.max_attempts`` attempts; one attempt = up to
``MAX_REDIRECTS + 1`` hops, all within the request's timeout. Every hop's URL is
checked before connecting and every name is resolved once by the pinning resolver,
so redirects cannot lead anywhere the first URL could not. Failures never raise;
they become the result's status and error (SCHEDULING.md §3 and §4).

What a run shares with every other run of the same ``Request`` (its template, its
redactor, the guard's verdict on the URL as written) is derived once and kept in a
bounded cache keyed by the request object: stores hand out one shared ``Request``
per stored configuration, and these values depend only on the request and on the
dispatcher's fixed policy. The address actually connected to is still checked on
every new connection, by the resolver (names) or by that cached verdict (literal
addresses, which aiohttp connects to without asking the resolver).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from yarl import URL

from cadenza.adapters.http import signing
from cadenza.adapters.http.outbound import (
    REDIRECT_STATUSES,
    Outbound,
    Template,
    idempotency_key,
    secret_values,
)
from cadenza.adapters.http.redaction import Redactor
from cadenza.adapters.http.resolver import PinningResolver
from cadenza.adapters.http.response import (
    describe_assertion,
    describe_statuses,
    parse_retry_after,
    read_capture,
)
from cadenza.adapters.http.ssrf import AddressPolicy
from cadenza.domain.errors import UnsafeTarget
from cadenza.domain.model import Endpoint, Request, ResponseCapture, RetryPolicy, RunStatus
from cadenza.ports import Clock, DispatchResult

if TYPE_CHECKING:
    from cadenza.config import Settings

MAX_REDIRECTS = 5
SSRF_PREFIX = "refused by the SSRF guard: "
PREPARED_CACHE_SIZE = 4096
"""Requests whose per-run constants are kept; beyond that the oldest are rebuilt."""
_log = structlog.get_logger("cadenza.dispatch")
# The attempt's own deadline bounds every hop, connection and read: a second,
# per-request aiohttp timer would only cost another timer per request.
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout()


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What every run of one request shares. ``request`` is held so that its id, the
    cache key, cannot be reused by another object while the entry lives."""

    request: Request
    template: Template
    redactor: Redactor
    refusal: str | None
    """Why the SSRF guard refuses the URL as written, or ``None``."""
    seconds: float


@dataclass(frozen=True, slots=True)
class _Attempt:
    status: RunStatus
    http_status: int | None = None
    error: str = ""
    response: ResponseCapture | None = None
    retry_after: timedelta | None = None
    retryable: bool = False


class _TooManyRedirects(Exception):
    pass


class HttpDispatcher:
    """Performs endpoint requests over one pooled aiohttp session.

    ``allowlist`` opens CIDRs or host names to the SSRF guard; ``signing_keys``
    (newest first, up to two used) sign each request; ``capture_bytes`` bounds the
    stored response body; ``max_concurrency`` and ``max_per_host`` bound open
    connections; ``resolver`` replaces system DNS (tests map names to addresses) and
    is owned, and closed, by the dispatcher. Call ``close()`` when done.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        allowlist: Sequence[str] = (),
        signing_keys: Sequence[str] = (),
        capture_bytes: int = 64 * 1024,
        max_concurrency: int = 512,
        max_per_host: int = 64,
        resolver: AbstractResolver | None = None,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self._clock = clock
        self._policy = AddressPolicy.from_allowlist(allowlist)
        self._keys = tuple(k for k in signing_keys if k)
        self._capture_bytes = capture_bytes
        self._limits = (max_concurrency, max_per_host)
        self._resolver = PinningResolver(self._policy, resolver)
        self._max_redirects = max_redirects
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._prepared: dict[int, _Prepared] = {}

    @classmethod
    def from_settings(
        cls, clock: Clock, settings: Settings, *, resolver: AbstractResolver | None = None
    ) -> HttpDispatcher:
        return cls(
            clock,
            allowlist=settings.ssrf_allowlist,
            signing_keys=settings.signing_keys,
            capture_bytes=settings.response_capture_bytes,
            max_concurrency=settings.max_concurrency,
            max_per_host=settings.max_per_host,
            resolver=resolver,
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("HttpDispatcher is closed")
        if self._session is None:
            # Created lazily because aiohttp binds a session to the running loop.
            connector = aiohttp.TCPConnector(
                limit=self._limits[0],
                limit_per_host=self._limits[1],
                resolver=self._resolver,
                use_dns_cache=False,  # one resolution per connection, checked and pinned
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Endpoints of different tenants share the session: never share cookies.
                cookie_jar=aiohttp.DummyCookieJar(),
                # A proxy from the environment would connect on our behalf, unchecked.
                trust_env=False,
                raise_for_status=False,
                timeout=_NO_AIOHTTP_TIMEOUT,
            )
        return self._session

    async def close(self) -> None:
        """Close the session, its connections and the resolver; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()
        await self._resolver.close()

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        """Run the endpoint's request with its retries; never raises for HTTP or
        network failures. ``retry_after`` is the last Retry-After seen, uncapped."""
        started_at = self._clock.now()
        start = self._clock.monotonic()
        prepared = self._prepare(endpoint.request)
        policy = endpoint.request.retry
        idempotency = idempotency_key(endpoint, scheduled_for.isoformat())
        attempts = 0
        retry_after: timedelta | None = None
        while True:
            attempts += 1
            outcome = await self._attempt(prepared, idempotency)
            retry_after = outcome.retry_after or retry_after
            _log_attempt(endpoint, attempts, outcome)
            if not outcome.retryable or attempts >= policy.max_attempts:
                break
            if outcome.retry_after is not None and outcome.retry_after > policy.max_backoff:
                break  # retrying sooner than asked is no retry: the next run waits instead
            await self._clock.sleep(backoff_delay(policy, attempts, outcome.retry_after))
        elapsed = timedelta(seconds=self._clock.monotonic() - start)
        return DispatchResult(
            status=outcome.status,
            started_at=started_at,
            finished_at=started_at + elapsed,
            http_status=outcome.http_status,
            error=outcome.error,
            response=outcome.response,
            attempts=attempts,
            retry_after=retry_after,
        )

    def _prepare(self, request: Request) -> _Prepared:
        cached = self._prepared.get(id(request))
        if cached is not None and cached.request is request:
            return cached
        try:
            self._policy.check_url(request.url)
            refusal = None
        except UnsafeTarget as exc:
            refusal = exc.message
        prepared = _Prepared(
            request,
            Template.of(request),
            Redactor(secret_values(request)),
            refusal,
            request.timeout.total_seconds(),
        )
        if len(self._prepared) >= PREPARED_CACHE_SIZE:
            del self._prepared[next(iter(self._prepared))]
        self._prepared[id(request)] = prepared
        return prepared

    async def _attempt(self, prepared: _Prepared, idempotency: str) -> _Attempt:
        seconds = prepared.seconds
        redactor = prepared.redactor
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(prepared, idempotency)
        except TimeoutError:
            return _Attempt(
                RunStatus.TIMEOUT, error=f"timed out after {seconds:g} s", retryable=True
            )
        except UnsafeTarget as exc:
            return _Attempt(RunStatus.ERROR, error=SSRF_PREFIX + redactor.text(exc.message))
        except _TooManyRedirects:
            return _Attempt(RunStatus.ERROR, error=f"stopped after {self._max_redirects} redirects")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            refusal = _find_refusal(exc)
            if refusal is not None:
                return _Attempt(RunStatus.ERROR, error=SSRF_PREFIX + redactor.text(refusal.message))
            # Connection failures and bodies cut off mid-way are usually transient.
            transient = aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | OSError
            retryable = isinstance(exc, transient)
            error = redactor.text(describe_error(exc))
            return _Attempt(RunStatus.ERROR, error=error, retryable=retryable)

    async def _follow(self, prepared: _Prepared, idempotency: str) -> _Attempt:
        if prepared.refusal is not None:
            raise UnsafeTarget(prepared.refusal)
        session = self._get_session()
        request, template = prepared.request, prepared.template
        hop: Outbound | None = None  # built only when a redirect rewrites the request
        current: Template | Outbound
        for _ in range(self._max_redirects + 1):
            if hop is None:
                current, headers = template, template.headers_for(idempotency)
            else:
                self._policy.check_url(hop.url)
                current, headers = hop, hop.header_map()
            if self._keys:
                timestamp = int(self._clock.now().timestamp())
                headers[signing.HEADER] = signing.sign(
                    self._keys, current.method, str(current.url), current.body, timestamp
                )
            async with session.request(
                current.method,
                current.url,
                headers=headers,
                data=current.body or None,
                allow_redirects=False,
            ) as response:
                location = _redirect_target(request, response)
                if location is None:
                    return await self._judge(request, response, prepared.redactor)
                hop = (hop or template.hop(idempotency)).redirected(response.status, location)
        raise _TooManyRedirects

    async def _judge(
        self, request: Request, response: aiohttp.ClientResponse, redactor: Redactor
    ) -> _Attempt:
        capture = redactor.capture(await read_capture(response, self._capture_bytes))
        if capture.truncated:
            response.close()  # drop the unread rest with the connection
        status = response.status
        retry_after = None
        header = response.headers.get("Retry-After")
        if header is not None:
            retry_after = parse_retry_after(header, self._clock.now())
        verdict = _Attempt(RunStatus.SUCCESS, status, response=capture, retry_after=retry_after)
        if status not in request.expected_status:
            expected = describe_statuses(request.expected_status)
            error = f"unexpected HTTP status {status} (expected {expected})"
            retryable = status in request.retry.retry_on_status
            return _failure(verdict, error, retryable)
        if request.assertion is not None and not request.assertion.holds(capture.body):
            error = f"response assertion failed: {describe_assertion(request.assertion)}"
            if capture.truncated:
                error += f" (checked against the first {len(capture.body)} bytes)"
            return _failure(verdict, error, retryable=False)
        return verdict


def _log_attempt(endpoint: Endpoint, attempt: int, outcome: _Attempt) -> None:
    # Ids, the URL and the verdict only: header values never reach the logs.
    success = outcome.status is RunStatus.SUCCESS
    if success and not _log.is_enabled_for(logging.DEBUG):
        return  # every run succeeding: skip building a line that would be dropped
    log = _log.debug if success else _log.info
    log(
        "dispatch.attempt",
        endpoint_id=endpoint.id,
        method=endpoint.request.method.value,
        url=endpoint.request.url,
        attempt=attempt,
        status=outcome.status.value,
        http_status=outcome.http_status,
        error=outcome.error,
    )


def _failure(verdict: _Attempt, error: str, retryable: bool) -> _Attempt:
    return _Attempt(
        RunStatus.FAILURE,
        verdict.http_status,
        error=error,
        response=verdict.response,
        retry_after=verdict.retry_after,
        retryable=retryable,
    )


def _redirect_target(request: Request, response: aiohttp.ClientResponse) -> URL | None:
    """Where to go next, or ``None`` when this response is the answer. A redirect
    the endpoint expects (say, ``expected_status={302}``) is not followed."""
    if response.status not in REDIRECT_STATUSES or response.status in request.expected_status:
        return None
    location = response.headers.get("Location")
    if not location:
        return None
    target = response.url.join(URL(location))
    if target.scheme not in ("http", "https"):
        raise UnsafeTarget(f"redirect to a {target.scheme or 'relative'!s} URL")
    return target


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: timedelta | None) -> float:
    """Seconds before attempt ``attempt + 1``: exponential from ``backoff``, at least
    the server's Retry-After, never above ``max_backoff`` (which the lease covers).
    A Retry-After above ``max_backoff`` ends the run instead (``dispatch``)."""
    delay = policy.backoff * (2 ** (attempt - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    capped: timedelta = min(delay, policy.max_backoff)
    return capped.total_seconds()


def _find_refusal(exc: BaseException) -> UnsafeTarget | None:
    """aiohttp may wrap the resolver's refusal; find it in the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnsafeTarget):
            return current
        seen.add(id(current))
        wrapped = getattr(current, "os_error", None)
        nxt = current.__cause__ or current.__context__
        current = wrapped if isinstance(wrapped, BaseException) and wrapped is not current else nxt
    return None


def describe_error(exc: BaseException) -> str:
    """A short, header-free account of a network failure."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup failed for {exc.host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"could not connect to {exc.host}:{exc.port}: {reason}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without a response"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
