"""``FernetSecretBox``: secret header values encrypted at rest (``ports.SecretBox``).

The key string holds one or more Fernet keys separated by commas. The first
encrypts; all of them decrypt, so a key can be rotated by putting the new one first
and dropping the old one once every row has been rewritten.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(ValueError):
    """The key string is empty or not a list of Fernet keys."""


class FernetSecretBox:
    """Seals with the first key of ``keys``; opens with any of them."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise SecretKeyError("The secret key is empty; generate one with generate_key().")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in parts])
        except (ValueError, UnicodeEncodeError) as exc:
            raise SecretKeyError(
                "The secret key must be url-safe base64 of 32 bytes (Fernet)."
            ) from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret cannot be decrypted with the configured key(s)."
            ) from None
