"""``rotate_secret``: what ``cadenza admin rotate-secret`` does to a database.

Rotating the server secret, as the operator runs it:

1. Set ``CADENZA_SECRET_KEY`` to the new secret and list the old one in
   ``CADENZA_PREVIOUS_SECRET_KEYS``; restart. Everything keeps working: stored
   secrets decrypt and digests verify with either secret, new ones use the new one.
2. Run ``cadenza admin rotate-secret``. Every stored secret header value, and every
   notification channel's secret, is re-encrypted with the new secret's key, so the
   old one is no longer needed for them.
3. API keys cannot be re-digested here: only a key's holder has its plaintext. Each
   key moves to the new secret the first time it is used during the grace window
   (``actions.identity``); sessions made with the old secret end when they expire.
   The command reports how many of each still depend on the old secret; when both
   are zero, or when the grace window you allow is over, drop the old secret from
   ``CADENZA_PREVIOUS_SECRET_KEYS``. Keys unused by then stop working and must be
   issued again.

The command is idempotent: run it again at any time for a fresh report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store.auth_tables import auth_sessions
from cadenza.adapters.store.notify_tables import notify_channels
from cadenza.adapters.store.sql import SqlStore
from cadenza.adapters.store.tables import api_keys, endpoints
from cadenza.keyring import Keyring

BATCH = 200
"""Endpoints rewritten per transaction: short transactions, few round trips."""


@dataclass(frozen=True, slots=True)
class RotationReport:
    endpoints_resealed: int
    api_keys_on_previous: int
    sessions_on_previous: int
    channels_resealed: int = 0

    def lines(self) -> list[str]:
        return [
            f"Re-encrypted the secret headers of {self.endpoints_resealed} endpoint(s) "
            "with the current secret.",
            f"Re-encrypted the secrets of {self.channels_resealed} notification channel(s).",
            f"{self.api_keys_on_previous} API key(s) still verify with a previous secret; "
            "each moves to the current one when next used.",
            f"{self.sessions_on_previous} session(s) still verify with a previous secret; "
            "they end when they expire.",
            "Drop CADENZA_PREVIOUS_SECRET_KEYS when both are 0, or when your grace window "
            "is over (keys not used by then stop working).",
        ]


async def rotate_secret(store: SqlStore, keyring: Keyring, now: datetime) -> RotationReport:
    """Re-encrypt every secret header with the current secret; count what still
    depends on a previous one (see the module docstring)."""
    resealed = await _reseal_endpoints(store)
    channels = await _reseal_channels(store, keyring)
    keys, sessions = await _count_previous(store, keyring, now)
    return RotationReport(resealed, keys, sessions, channels)


async def _reseal_channels(store: SqlStore, keyring: Keyring) -> int:
    """Decrypt each channel secret with any known key and encrypt it with the current
    one; few rows, so one transaction, rows locked (``FOR UPDATE`` on PostgreSQL)."""
    box = FernetSecretBox(",".join(keyring.fernet_keys()))
    c = notify_channels.c
    query = sa.select(c.id, c.secret).where(c.secret != "").with_for_update()
    async with store.engine.connect() as conn, conn.begin():
        rows = (await conn.execute(query)).all()
        for channel_id, sealed in rows:
            fresh = box.seal(box.open(sealed))
            await conn.execute(
                notify_channels.update().where(c.id == channel_id).values(secret=fresh)
            )
    return len(rows)


async def _reseal_endpoints(store: SqlStore) -> int:
    """Read and write back every endpoint with a secret header, a batch per
    transaction: reading decrypts with any known key, writing encrypts with the
    current one. Rows are read locked, so no concurrent change is lost."""
    resealed = 0
    after = ""
    while True:
        page_query = (
            sa.select(endpoints.c.id, endpoints.c.tenant_id)
            .where(endpoints.c.id > after)
            .order_by(endpoints.c.id)
            .limit(BATCH)
        )
        async with store.engine.connect() as conn:
            page = (await conn.execute(page_query)).all()
        if not page:
            return resealed
        async with store.transaction() as tx:
            for endpoint_id, tenant_id in page:
                endpoint = await tx.get_endpoint(tenant_id, endpoint_id, for_update=True)
                if any(h.secret for h in endpoint.request.headers):
                    await tx.update_endpoint(endpoint)
                    resealed += 1
        after = page[-1][0]


async def _count_previous(store: SqlStore, keyring: Keyring, now: datetime) -> tuple[int, int]:
    k = api_keys.c
    live_keys = sa.select(k.digest).where(
        k.revoked_at.is_(None), sa.or_(k.expires_at.is_(None), k.expires_at > now)
    )
    live_sessions = sa.select(auth_sessions.c.digest).where(auth_sessions.c.expires_at > now)
    async with store.engine.connect() as conn:
        key_digests = (await conn.execute(live_keys)).scalars().all()
        session_digests = (await conn.execute(live_sessions)).scalars().all()
    return (
        sum(not keyring.is_current(d) for d in key_digests),
        sum(not keyring.is_current(d) for d in session_digests),
    )
