"""Cross-process wake-ups on PostgreSQL: LISTEN on the store's NOTIFY channel.

The store sends ``NOTIFY cadenza_wakeup`` after every transaction that may make an
endpoint due sooner; each worker holds one dedicated autocommit connection that
listens and rings the in-process ``Waker``. A broken connection is reopened with
backoff, and the waker rings once on every (re)connect, because notifications sent
while disconnected are gone.
"""

from __future__ import annotations

import psycopg
import sqlalchemy as sa
import structlog

from cadenza.adapters.store import CHANNEL
from cadenza.ports import Clock, Waker

log = structlog.get_logger("cadenza.wakeups")

_MIN_BACKOFF = 0.5
_MAX_BACKOFF = 30.0
_HEALTHY = 10.0
"""A connection that lived this long resets the backoff."""


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) as a plain libpq URL for psycopg."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def is_postgres(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "postgresql"


async def listen_for_wakeups(url: str, waker: Waker, clock: Clock) -> None:
    """Ring ``waker`` on every notification until cancelled; reconnects on failure."""
    conninfo = libpq_url(url)
    backoff = _MIN_BACKOFF
    while True:
        opened = clock.monotonic()
        try:
            await _listen(conninfo, waker)
        except (psycopg.Error, OSError) as exc:
            if clock.monotonic() - opened > _HEALTHY:
                backoff = _MIN_BACKOFF
            # The type only: connection errors can quote the connection string.
            log.warning("wakeups.disconnected", error=type(exc).__name__, retry_s=backoff)
        await clock.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF)


async def _listen(conninfo: str, waker: Waker) -> None:
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    async with conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        log.info("wakeups.listening", channel=CHANNEL)
        waker.wake()
        async for _ in conn.notifies():
            waker.wake()
