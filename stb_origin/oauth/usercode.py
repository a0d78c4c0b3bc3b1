"""User codes (RFC 8628 §6.1): 8 letters from 20 consonants, about 34.5 bits.

No vowels, so no words; no digits, so nothing to confuse with letters. Shown
as XXXX-XXXX; typed any way: lower case, with or without the dash or spaces.
"""

from __future__ import annotations

import secrets

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
LENGTH = 8
_ALLOWED = frozenset(ALPHABET)


def new_user_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize(typed: str) -> str | None:
    """The stored form of what the user typed, or None if it cannot be a code."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != LENGTH or not set(code) <= _ALLOWED:
        return None
    return code
