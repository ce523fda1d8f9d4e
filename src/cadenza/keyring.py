"""One key per purpose, derived from the server secret with HKDF (RFC 5869).

The server secret (``CADENZA_SECRET_KEY``) is never used as a key itself. HKDF-SHA256
stretches it into independent keys, one per label:

* ``sessions``: keys the digests of session tokens stored server-side;
* ``api-keys``: keys the digests of API keys;
* ``headers``: the Fernet key that encrypts secret header values at rest;
* ``key-id``: a short public fingerprint of the secret, written in front of every
  digest (``<key id>:<hex>``) so that a digest names the secret it was made with.

Rotation: a ``Keyring`` holds the current secret's keys and those of the previous
secrets an operator still lists (``CADENZA_PREVIOUS_SECRET_KEYS``). New digests and
ciphertexts use the current keys; digests made with a previous secret still verify
(and say so, so callers can rewrite them) until that secret is dropped.

Digests and ciphertexts written before keys were derived this way (a bare 64-digit
hex digest keyed with ``sha256("cadenza/api-keys|" + secret)``; headers encrypted
with the secret itself as the Fernet key, or its SHA-256 when it is not one) are
recognised too, as if made with a previous secret, so upgrading loses nothing.

Pure standard library: every process derives its keys at start, and a worker must
not pay for importing ``cryptography`` to do it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

_HASH = hashlib.sha256
_HASH_BYTES = 32
_SALT = b"cadenza server secret v1"
_LEGACY_API_KEY_LABEL = b"cadenza/api-keys|"
MIN_SECRET_BYTES = 16


def hkdf_sha256(secret: bytes, info: bytes, length: int = _HASH_BYTES, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with ``salt``, expand with ``info`` to ``length`` bytes."""
    if not 0 < length <= 255 * _HASH_BYTES:
        raise ValueError("HKDF-SHA256 yields 1 to 8160 bytes")
    prk = hmac.new(salt or bytes(_HASH_BYTES), secret, _HASH).digest()
    blocks: list[bytes] = []
    previous = b""
    for counter in range(1, -(-length // _HASH_BYTES) + 1):
        previous = hmac.new(prk, previous + info + bytes([counter]), _HASH).digest()
        blocks.append(previous)
    return b"".join(blocks)[:length]


class Purpose(Enum):
    """What a derived key is for; the value is its HKDF label."""

    SESSIONS = b"cadenza/sessions"
    API_KEYS = b"cadenza/api-key-digests"
    HEADERS = b"cadenza/header-encryption"
    KEY_ID = b"cadenza/key-id"


class Match(Enum):
    """How a stored digest relates to the keyring."""

    NONE = "none"
    CURRENT = "current"
    PREVIOUS = "previous"
    """Made with a previous (or pre-HKDF) secret: valid, but worth rewriting."""


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """The keys of one server secret, one per purpose."""

    key_id: str
    keys: dict[Purpose, bytes] = field(repr=False)

    @classmethod
    def derive(cls, secret: bytes) -> SecretKeys:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"The server secret needs at least {MIN_SECRET_BYTES} bytes.")
        keys = {p: hkdf_sha256(secret, p.value, salt=_SALT) for p in Purpose}
        return cls(keys[Purpose.KEY_ID][:4].hex(), keys)

    def sign(self, purpose: Purpose, message: str) -> str:
        """``<key id>:<hex HMAC-SHA256 of message>`` under the purpose's key."""
        mac = hmac.new(self.keys[purpose], message.encode(), _HASH).hexdigest()
        return f"{self.key_id}:{mac}"

    def fernet_key(self) -> str:
        return base64.urlsafe_b64encode(self.keys[Purpose.HEADERS]).decode("ascii")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current secret's keys, the previous secrets' keys, and the pre-HKDF keys
    of both (see the module docstring). Build it with ``Keyring.of``."""

    current: SecretKeys
    previous: tuple[SecretKeys, ...] = ()
    legacy_secrets: tuple[bytes, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, secret: bytes, previous: Iterable[bytes] = ()) -> Keyring:
        older = tuple(p for p in previous if p and p != secret)
        return cls(
            SecretKeys.derive(secret),
            tuple(SecretKeys.derive(p) for p in older),
            (secret, *older),
        )

    @property
    def key_id(self) -> str:
        return self.current.key_id

    def digest(self, purpose: Purpose, message: str) -> str:
        """The digest to store for ``message``, made with the current secret."""
        return self.current.sign(purpose, message)

    def check(self, purpose: Purpose, message: str, stored: str) -> Match:
        """Whether ``stored`` is the digest of ``message`` under any known secret.
        Compares in constant time; a key id nobody knows matches nothing."""
        key_id, colon, _ = stored.partition(":")
        if not colon:
            return self._check_legacy(purpose, message, stored)
        for keys, verdict in self._by_age():
            if keys.key_id == key_id:
                ok = hmac.compare_digest(keys.sign(purpose, message), stored)
                return verdict if ok else Match.NONE
        return Match.NONE

    def _by_age(self) -> Iterable[tuple[SecretKeys, Match]]:
        yield self.current, Match.CURRENT
        for keys in self.previous:
            yield keys, Match.PREVIOUS

    def _check_legacy(self, purpose: Purpose, message: str, stored: str) -> Match:
        if purpose is not Purpose.API_KEYS:
            return Match.NONE
        for secret in self.legacy_secrets:
            key = _HASH(_LEGACY_API_KEY_LABEL + secret).digest()
            expected = hmac.new(key, message.encode(), _HASH).hexdigest()
            if hmac.compare_digest(expected, stored):
                return Match.PREVIOUS
        return Match.NONE

    def is_current(self, stored: str) -> bool:
        """Whether a stored digest was made with the current secret."""
        return stored.startswith(f"{self.current.key_id}:")

    def fernet_keys(self) -> list[str]:
        """Fernet keys for secret headers: the current one first (it encrypts), then
        every key that may have encrypted a stored value (they all decrypt)."""
        keys = [self.current.fernet_key(), *(k.fernet_key() for k in self.previous)]
        keys += [k for secret in self.legacy_secrets for k in _legacy_fernet_keys(secret)]
        return list(dict.fromkeys(keys))


def _legacy_fernet_keys(secret: bytes) -> list[str]:
    """How headers were keyed before HKDF: the secret itself when it is a comma-separated
    list of Fernet keys, else the urlsafe base64 of its SHA-256."""
    parts = [p.strip() for p in secret.split(b",") if p.strip()]
    if parts and all(_is_fernet_key(p) for p in parts):
        return [p.decode("ascii") for p in parts]
    return [base64.urlsafe_b64encode(_HASH(secret).digest()).decode("ascii")]


def _is_fernet_key(key: bytes) -> bool:
    try:
        return key.isascii() and len(base64.urlsafe_b64decode(key)) == _HASH_BYTES
    except (binascii.Error, ValueError):
        return False
