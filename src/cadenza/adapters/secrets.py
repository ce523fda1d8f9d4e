"""``FernetSecretBox``: secret header values encrypted at rest (``ports.SecretBox``).

The key string holds one or more Fernet keys separated by commas. The first
encrypts; all of them decrypt, so a key can be rotated by putting the new one first
and dropping the old one once every row has been rewritten.

``cryptography`` is imported on the first seal or open, not with this module: it
adds ~7 MB to the resident size of every process, and a worker whose endpoints hold
no secret header never needs it. The keys are checked up front all the same.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

_KEY_BYTES = 32
"""A Fernet key: 16 bytes of signing key, then 16 of encryption key."""


class SecretKeyError(ValueError):
    """The key string is empty or not a list of Fernet keys."""


class FernetSecretBox:
    """Seals with the first key of ``keys``; opens with any of them."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise SecretKeyError("The secret key is empty; generate one with generate_key().")
        if not all(_is_fernet_key(k) for k in parts):
            raise SecretKeyError("The secret key must be url-safe base64 of 32 bytes (Fernet).")
        self._keys = parts
        self._fernet: MultiFernet | None = None

    @staticmethod
    def generate_key() -> str:
        return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode("ascii")

    def seal(self, plaintext: str) -> str:
        return self._box().encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._box().decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret cannot be decrypted with the configured key(s)."
            ) from None

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in self._keys])
        return self._fernet


def _is_fernet_key(key: str) -> bool:
    """What ``cryptography``'s ``Fernet(key)`` accepts, checked without importing it."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == _KEY_BYTES
    except (binascii.Error, UnicodeEncodeError):
        return False
