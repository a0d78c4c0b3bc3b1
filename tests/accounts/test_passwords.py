from __future__ import annotations

import pytest

from stb_origin.accounts import passwords
from stb_origin.accounts.errors import InvalidValue
from stb_origin.accounts.passwords import ScryptParams

CHEAP = ScryptParams(log2_n=10, r=8, p=1)


def test_hash_then_verify() -> None:
    encoded = passwords.hash_password("correct horse battery")
    assert encoded.startswith("$scrypt$ln=14,r=8,p=5$")
    assert "correct horse" not in encoded
    assert passwords.verify_password("correct horse battery", encoded)
    assert not passwords.verify_password("correct horse battery!", encoded)
    assert not passwords.needs_rehash(encoded)


def test_every_hash_has_its_own_salt() -> None:
    first, second = (passwords.hash_password("same password", CHEAP) for _ in range(2))
    assert first != second
    assert first.split("$")[3] != second.split("$")[3]
    assert passwords.verify_password("same password", first)
    assert passwords.verify_password("same password", second)


def test_parameters_travel_with_the_hash() -> None:
    cheap = passwords.hash_password("an old password", CHEAP)
    assert cheap.startswith("$scrypt$ln=10,r=8,p=1$")
    assert passwords.verify_password("an old password", cheap)
    assert passwords.needs_rehash(cheap)


@pytest.mark.parametrize("encoded", [
    "",
    "plain text",
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "$scrypt$ln=14,r=8$c2FsdA$aGFzaA",
    "$scrypt$ln=14,r=8,p=5$not base64!$aGFzaA",
    # A tampered row must not make us allocate gigabytes.
    "$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaA",
])
def test_malformed_hashes_never_verify(encoded: str) -> None:
    assert not passwords.verify_password("anything at all", encoded)
    assert passwords.needs_rehash(encoded)


@pytest.mark.parametrize("password", ["", "short", "x" * 1025])
def test_weak_or_absurd_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidValue, match="8 to 1024 characters"):
        passwords.check_strength(password)
