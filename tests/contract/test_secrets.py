"""The Fernet secret box: sealing, opening, key rotation and bad keys."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize("key", ["", " , ", "not-a-key"])
def test_an_empty_or_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(SecretKeyError):
        FernetSecretBox(key)
