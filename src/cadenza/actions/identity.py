"""Users, passwords and API keys: the functions every surface and the CLI share.

* Each user is a tenant (``User.tenant_id == User.id``).
* Passwords are hashed with Argon2 (pwdlib); hashing runs in a thread because it is
  deliberately slow and would otherwise stall the event loop.
* API keys read ``cdz_<prefix>_<secret>``. Only an HMAC-SHA256 digest of the whole
  key is stored, keyed with the API-key key of the ``Keyring`` (derived from the
  server secret); the prefix finds the row and is shown to identify the key. The
  plaintext is returned once, at issue. A key whose digest was made with a previous
  secret (during a rotation) is re-digested with the current one when it is next used:
  only then is its plaintext at hand.
* A key's ``last_used_at`` is written at most once per ``LAST_USED_GRANULARITY``, so
  authenticating is at most a single read on the hot path.
* ``KeyCache`` spares even that read: a process keeps a key it read for
  ``KEY_CACHE_TTL`` (5 s). Expiry is checked on every request and revoking through
  this process forgets the key at once; a key revoked by another process (the CLI,
  another server) may still be accepted here for up to ``KEY_CACHE_TTL``.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import string
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from cadenza.domain import errors
from cadenza.domain.identity import ALL_SCOPES, ApiKey, KeyKind, Scope, User
from cadenza.domain.model import Actor, ActorKind
from cadenza.ids import new_id
from cadenza.keyring import Keyring, Match, Purpose
from cadenza.ports import Clock, Store

KEY_MARK = "cdz"
PREFIX_LENGTH = 8
MIN_PASSWORD_LENGTH = 10
MAX_EMAIL_LENGTH = 254
LAST_USED_GRANULARITY = timedelta(minutes=1)
KEY_CACHE_TTL = timedelta(seconds=5)
"""How long a process trusts a key it read; bounds how late another process's
revocation takes effect here."""
KEY_CACHE_SIZE = 10_000
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_CHARS = frozenset(_PREFIX_ALPHABET)
_HASHER = PasswordHash((Argon2Hasher(),))


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so both paths take as long."""
    return _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an authenticated request acts as."""

    tenant_id: str
    actor: Actor
    scopes: frozenset[Scope]


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > MAX_EMAIL_LENGTH or " " in value:
        raise errors.ValidationError(f"{email!r} is not an e-mail address.", "email")
    return value


async def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.ValidationError(
            f"The password needs at least {MIN_PASSWORD_LENGTH} characters.", "password"
        )
    return await asyncio.to_thread(_HASHER.hash, password)


async def create_user(
    store: Store, clock: Clock, email: str, password: str, *, is_admin: bool
) -> User:
    """Create a user (and so a tenant); ``DuplicateName`` if the e-mail is taken."""
    address = normalize_email(email)
    digest = await hash_password(password)
    now = clock.now()
    user = User(new_id("usr", now), address, digest, now, is_admin=is_admin)
    async with store.transaction() as tx:
        if await tx.find_user_by_email(address) is not None:
            raise errors.DuplicateName(f"A user with e-mail {address!r} exists.")
        await tx.insert_user(user)
    return user


async def authenticate_password(store: Store, email: str, password: str) -> User:
    """The user with this e-mail and password, else ``AuthenticationFailed``."""
    try:
        address = normalize_email(email)
    except errors.ValidationError:
        address = ""
    async with store.transaction(readonly=True) as tx:
        user = await tx.find_user_by_email(address) if address else None
    stored = user.password_hash if user is not None else _dummy_hash()
    ok = await asyncio.to_thread(_HASHER.verify, password, stored)
    if user is None or not ok:
        raise errors.AuthenticationFailed("Unknown e-mail or wrong password.")
    return user


class PasswordChecks:
    """At most ``concurrency`` password checks at once and ``waiting`` queued; a
    sign-in beyond both is refused with ``RateLimited`` instead of queueing."""

    def __init__(self, concurrency: int = 2, waiting: int = 16) -> None:
        self.concurrency = max(1, concurrency)
        self.waiting = max(0, waiting)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._queued = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._queued >= self.waiting:
            raise errors.RateLimited("Too many sign-ins at once; retry in a moment.", 1.0)
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        try:
            yield
        finally:
            self._slots.release()


def key_digest(keyring: Keyring, plaintext: str) -> str:
    """The digest stored for an API key: ``<key id>:<hex HMAC-SHA256>``."""
    return keyring.digest(Purpose.API_KEYS, plaintext)


def _new_plaintext() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(32)}"


async def issue_api_key(
    store: Store,
    clock: Clock,
    keyring: Keyring,
    tenant_id: str,
    name: str,
    scopes: frozenset[Scope],
    kind: KeyKind,
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    """Store a new key for ``tenant_id``; returns it and its plaintext (shown once)."""
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise errors.ValidationError("expires_at must be in the future.", "expires_at")
    if not scopes:
        raise errors.ValidationError("A key needs at least one scope.", "scopes")
    prefix, plaintext = _new_plaintext()
    key = ApiKey(
        id=new_id("key", now),
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        digest=key_digest(keyring, plaintext),
        scopes=scopes,
        kind=kind,
        created_at=now,
        expires_at=expires_at,
    )
    async with store.transaction() as tx:
        await tx.insert_api_key(key)
    return key, plaintext


class KeyCache:
    """Keys read recently, by prefix, so that most requests skip the store.

    An entry serves for ``ttl`` after it was read. ``forget`` (called on revocation)
    also bumps ``generation``: a read that began before it cannot put back the key
    it saw, which may predate the revocation. Bounded: the oldest entry goes first.
    """

    def __init__(
        self, clock: Clock, ttl: timedelta = KEY_CACHE_TTL, size: int = KEY_CACHE_SIZE
    ) -> None:
        self.clock = clock
        self.ttl = ttl.total_seconds()
        self.size = size
        self.generation = 0
        self._keys: OrderedDict[str, tuple[ApiKey, float]] = OrderedDict()

    def get(self, prefix: str) -> ApiKey | None:
        entry = self._keys.get(prefix)
        if entry is None:
            return None
        key, read_at = entry
        if self.clock.monotonic() - read_at >= self.ttl:
            del self._keys[prefix]
            return None
        return key

    def put(self, key: ApiKey, generation: int) -> None:
        """Keep ``key``, read when the cache was at ``generation``, unless it is stale."""
        if generation != self.generation:
            return
        self._keys[key.prefix] = (key, self.clock.monotonic())
        self._keys.move_to_end(key.prefix)
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def forget(self, prefix: str) -> None:
        self.generation += 1
        self._keys.pop(prefix, None)


async def authenticate_key(
    store: Store, clock: Clock, keyring: Keyring, plaintext: str, cache: KeyCache | None = None
) -> ApiKey:
    """The usable key matching ``plaintext``, else ``AuthenticationFailed``.

    With ``cache``, a key read in the last ``cache.ttl`` is not read again; its digest
    and expiry are checked on every call all the same. A malformed key is refused
    before the store is asked.
    """
    mark, _, rest = plaintext.partition("_")
    prefix, _, _tail = rest.partition("_")
    if mark != KEY_MARK or len(prefix) != PREFIX_LENGTH or not set(prefix) <= _PREFIX_CHARS:
        raise errors.AuthenticationFailed("Malformed API key.")
    now = clock.now()
    key = None if cache is None else cache.get(prefix)
    if key is None:
        key = await _read_key(store, prefix, cache)
    key, match = _usable(key, keyring, plaintext, now)
    stale = key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY
    if stale or match is Match.PREVIOUS:
        redigest = (key.digest, key_digest(keyring, plaintext))
        touched = await _read_key(store, prefix, cache, touch_at=now, redigest=redigest)
        key, _ = _usable(touched, keyring, plaintext, now)
    return key


def _usable(
    key: ApiKey | None, keyring: Keyring, plaintext: str, now: datetime
) -> tuple[ApiKey, Match]:
    # Without a key, a digest that cannot match keeps both paths equally long.
    stored = key.digest if key is not None else f"{keyring.key_id}:{'0' * 64}"
    match = keyring.check(Purpose.API_KEYS, plaintext, stored)
    if key is None or match is Match.NONE or not key.usable(now):
        raise errors.AuthenticationFailed("Unknown, revoked or expired API key.")
    return key, match


async def _read_key(
    store: Store,
    prefix: str,
    cache: KeyCache | None,
    *,
    touch_at: datetime | None = None,
    redigest: tuple[str, str] | None = None,
) -> ApiKey | None:
    """The key with ``prefix`` from the store, kept in ``cache``; with ``touch_at``, its
    ``last_used_at`` is set in the same transaction, and with ``redigest`` (old, new)
    its digest is replaced if it still is the old one. The row is written as read
    there, never from the copy the request holds, which may predate a revocation."""
    generation = 0 if cache is None else cache.generation
    async with store.transaction(readonly=touch_at is None) as tx:
        key = await tx.find_api_key_by_prefix(prefix)
        if key is not None and touch_at is not None and key.usable(touch_at):
            digest = redigest[1] if redigest and redigest[0] == key.digest else key.digest
            key = replace(key, last_used_at=touch_at, digest=digest)
            await tx.update_api_key(key)
    if cache is not None and key is not None:
        cache.put(key, generation)
    return key


def caller_for_key(key: ApiKey) -> Caller:
    kind = ActorKind.AGENT if key.kind is KeyKind.AGENT else ActorKind.API_KEY
    return Caller(key.tenant_id, Actor(kind, key.id, key.name), key.scopes)


def caller_for_user(user: User) -> Caller:
    """A signed-in person holds every scope of their own tenant."""
    return Caller(user.tenant_id, Actor(ActorKind.USER, user.id, user.email), ALL_SCOPES)


async def ensure_admin(
    store: Store, clock: Clock, keyring: Keyring, email: str, password: str
) -> tuple[User, str | None, str] | None:
    """On first start (no users yet) create an admin and an admin API key.

    Returns the user, the generated password (``None`` when ``password`` was given)
    and the key's plaintext, for the caller to print once; ``None`` when users exist.
    """
    async with store.transaction(readonly=True) as tx:
        if await tx.count_users() > 0:
            return None
    generated = None if password else secrets.token_urlsafe(18)
    user = await create_user(
        store,
        clock,
        email or "admin@localhost.localdomain",
        password or generated or "",
        is_admin=True,
    )
    _, plaintext = await issue_api_key(
        store, clock, keyring, user.tenant_id, "admin", frozenset({Scope.ADMIN}), KeyKind.USER, None
    )
    return user, generated, plaintext
