"""The Fernet secret box: sealing, opening, key rotation and bad keys."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from cadenza.adapters.secrets import FernetSecretBox, SecretKeyError


def test_a_sealed_value_opens_to_the_plaintext_and_does_not_contain_it() -> None:
    box = FernetSecretBox(FernetSecretBox.generate_key())
    sealed = box.seal("Bearer token-ü")
    assert "token" not in sealed
    assert box.open(sealed) == "Bearer token-ü"
    assert box.seal("same") != box.seal("same")


def test_a_rotated_key_list_opens_old_secrets_and_seals_with_the_new_key() -> None:
    old, new = FernetSecretBox.generate_key(), FernetSecretBox.generate_key()
    sealed_old = FernetSecretBox(old).seal("s")
    rotated = FernetSecretBox(f"{new}, {old}")
    assert rotated.open(sealed_old) == "s"
    assert FernetSecretBox(new).open(rotated.seal("t")) == "t"


def test_a_secret_sealed_with_another_key_is_refused() -> None:
    sealed = FernetSecretBox(FernetSecretBox.generate_key()).seal("s")
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        FernetSecretBox(FernetSecretBox.generate_key()).open(sealed)


_SHORT = base64.urlsafe_b64encode(bytes(31)).decode()
_LONG = base64.urlsafe_b64encode(bytes(33)).decode()


@pytest.mark.parametrize("key", ["", " , ", "not-a-key", _SHORT, _LONG, "é" * 44])
def test_an_empty_or_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(SecretKeyError):
        FernetSecretBox(key)


def test_a_generated_key_is_a_fernet_key_and_a_fernet_key_is_accepted() -> None:
    Fernet(FernetSecretBox.generate_key())
    box = FernetSecretBox(Fernet.generate_key().decode())
    assert box.open(box.seal("x")) == "x"


def test_cryptography_is_loaded_only_when_a_secret_is_sealed_or_opened() -> None:
    # A fresh interpreter: this one loaded cryptography for the tests above.
    probe = (
        "import sys\n"
        "from cadenza import cli\n"
        "from cadenza.adapters.secrets import FernetSecretBox\n"
        "box = FernetSecretBox(FernetSecretBox.generate_key())\n"
        "print('cryptography' in sys.modules)\n"
        "box.open(box.seal('s'))\n"
        "print('cryptography' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "True"]
