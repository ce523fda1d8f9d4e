"""``Redactor``: secret header values kept out of what is stored about a run.

A target may echo what it received, whole or in part, and not always as it was
sent. For each secret value the redactor looks for:

* the value itself and its credential: what follows an auth scheme (``Bearer``,
  ``Basic``, ``Token`` …) and, for ``Basic``, the decoded ``user:password`` and the
  password;
* each of those in base64 (standard and URL-safe, padded or not), percent-encoded,
  in hex, and escaped as inside a JSON string;
* in any letter case.

Every match becomes ``[redacted]`` in captured bodies, captured header values and
error text, before anything is stored. Values shorter than ``MIN_REDACTED_LENGTH``
are left alone: replacing every ``ab`` of a body would destroy it, and a secret that
short protects nothing anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from urllib.parse import quote

from cadenza.domain.model import ResponseCapture

REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 4
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9._~+/-]*")


class Redactor:
    """Replaces secret values, in every form the module docstring lists."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets for form in secret_forms(secret)}
        kept = sorted((f for f in forms if len(f) >= MIN_REDACTED_LENGTH), key=len, reverse=True)
        self._text: re.Pattern[str] | None = None
        self._data: re.Pattern[bytes] | None = None
        if kept:
            self._text = re.compile("|".join(map(re.escape, kept)), re.IGNORECASE)
            encoded = (re.escape(f.encode()) for f in kept)
            self._data = re.compile(b"|".join(encoded), re.IGNORECASE)

    def text(self, value: str) -> str:
        return value if self._text is None else self._text.sub(REDACTED, value)

    def data(self, value: bytes) -> bytes:
        return value if self._data is None else self._data.sub(REDACTED.encode(), value)

    def capture(self, capture: ResponseCapture) -> ResponseCapture:
        if self._text is None:
            return capture
        return ResponseCapture(
            body=self.data(capture.body),
            content_type=self.text(capture.content_type),
            size=capture.size,
            truncated=capture.truncated,
            headers=tuple((name, self.text(value)) for name, value in capture.headers),
        )


def secret_forms(secret: str) -> set[str]:
    """Every form of ``secret`` a target might echo (case aside: matching ignores it)."""
    plain = {v for v in (secret, *_credentials(secret)) if len(v) >= MIN_REDACTED_LENGTH}
    forms = set(plain)
    for value in plain:
        forms.update(_encodings(value))
    return forms


def _credentials(secret: str) -> list[str]:
    """The credential after an auth scheme, and what a Basic credential decodes to."""
    scheme, _, credential = secret.strip().partition(" ")
    credential = credential.strip()
    if not credential or not _SCHEME.fullmatch(scheme):
        return []
    parts = [credential]
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return parts
        parts.append(decoded)
        _user, colon, password = decoded.partition(":")
        if colon:
            parts.append(password)
    return parts


def _encodings(value: str) -> list[str]:
    raw = value.encode("utf-8")
    standard = base64.b64encode(raw).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    return [
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        quote(value, safe=""),
        raw.hex(),
        json.dumps(value)[1:-1],
    ]
