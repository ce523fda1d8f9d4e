"""Per-purpose keys derived from the server secret with HKDF, and their rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cadenza.config import Settings
from cadenza.container import secret_box
from cadenza.keyring import Keyring, Match, Purpose, SecretKeys, hkdf_sha256

SECRET = b"the-server-secret-for-these-tests"
OLDER = b"the-secret-it-replaced-some-time-ago"


def test_hkdf_matches_the_rfc_5869_test_vectors() -> None:
    ikm = bytes([0x0B] * 22)
    case_1 = hkdf_sha256(ikm, bytes(range(0xF0, 0xFA)), 42, salt=bytes(range(13)))
    assert case_1.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    case_3 = hkdf_sha256(ikm, b"", 42)
    assert case_3.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_hkdf_agrees_with_the_cryptography_package_on_long_outputs() -> None:
    expected = HKDF(hashes.SHA256(), length=100, salt=b"salt", info=b"label").derive(SECRET)
    assert hkdf_sha256(SECRET, b"label", 100, salt=b"salt") == expected


def test_each_purpose_gets_its_own_key_and_none_is_the_secret() -> None:
    keys = SecretKeys.derive(SECRET).keys
    values = [keys[p] for p in Purpose]
    assert len(set(values)) == len(values)
    assert SECRET not in values
    assert hashlib.sha256(SECRET).digest() not in values


def test_a_secret_shorter_than_16_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Keyring.of(b"short")


def test_digests_name_the_secret_that_made_them_and_verify_only_for_their_purpose() -> None:
    ring = Keyring.of(SECRET)
    digest = ring.digest(Purpose.API_KEYS, "cdz_abcdefgh_token")
    assert digest.startswith(f"{ring.key_id}:")
    assert ring.check(Purpose.API_KEYS, "cdz_abcdefgh_token", digest) is Match.CURRENT
    assert ring.check(Purpose.SESSIONS, "cdz_abcdefgh_token", digest) is Match.NONE
    assert ring.check(Purpose.API_KEYS, "cdz_abcdefgh_other", digest) is Match.NONE


def test_a_digest_of_a_previous_secret_verifies_until_that_secret_is_dropped() -> None:
    old = Keyring.of(OLDER).digest(Purpose.SESSIONS, "cookie")
    rotating = Keyring.of(SECRET, [OLDER])
    assert rotating.check(Purpose.SESSIONS, "cookie", old) is Match.PREVIOUS
    assert not rotating.is_current(old)
    assert Keyring.of(SECRET).check(Purpose.SESSIONS, "cookie", old) is Match.NONE


def test_api_key_digests_made_before_hkdf_still_verify_as_previous() -> None:
    legacy_key = hashlib.sha256(b"cadenza/api-keys|" + SECRET).digest()
    legacy = hmac.new(legacy_key, b"cdz_abcdefgh_token", hashlib.sha256).hexdigest()
    ring = Keyring.of(SECRET)
    assert ring.check(Purpose.API_KEYS, "cdz_abcdefgh_token", legacy) is Match.PREVIOUS
    assert ring.check(Purpose.SESSIONS, "cdz_abcdefgh_token", legacy) is Match.NONE


def test_the_header_box_encrypts_with_the_derived_key_and_opens_older_ciphertexts(
    tmp_path: Path,
) -> None:
    passphrase = SECRET.decode()
    fernet_secret = Fernet.generate_key().decode()
    derived = Fernet(Keyring.of(SECRET).current.fernet_key())
    pre_hkdf = Fernet(base64.urlsafe_b64encode(hashlib.sha256(SECRET).digest()))
    box = secret_box(Settings(_env_file=None, secret_key=passphrase), tmp_path / "unused")
    assert derived.decrypt(box.seal("value").encode()) == b"value"
    assert box.open(pre_hkdf.encrypt(b"old").decode()) == "old"
    # Before HKDF a secret that was itself a Fernet key encrypted headers directly.
    rotated = Settings(_env_file=None, secret_key=passphrase, previous_secret_keys=[fernet_secret])
    older = Fernet(fernet_secret.encode()).encrypt(b"older").decode()
    assert secret_box(rotated, tmp_path / "unused").open(older) == "older"
