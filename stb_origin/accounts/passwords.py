"""Password hashing with scrypt (stdlib), in a self-describing PHC-style string.

    $scrypt$ln=14,r=8,p=5$<salt>$<hash>

The parameters travel with each hash, so raising them later only needs
``needs_rehash`` at the next sign-in. N=2^14, r=8, p=5 is one of OWASP's
equivalent scrypt settings; it keeps the memory per hash at 16 MiB, which
matters more on a busy server than the CPU time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from stb_origin.accounts.errors import InvalidValue

MIN_LENGTH = 8
MAX_LENGTH = 1024
_SALT_BYTES = 16
_HASH_BYTES = 32


@dataclass(frozen=True)
class ScryptParams:
    log2_n: int = 14
    r: int = 8
    p: int = 5

    @property
    def maxmem(self) -> int:
        # hashlib's default ceiling (32 MiB) is below what larger settings need.
        return 2 * 128 * self.r * (1 << self.log2_n) + 1024 * 1024


DEFAULT_PARAMS = ScryptParams()


def check_strength(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidValue(f"a password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    salt = os.urandom(_SALT_BYTES)
    digest = _scrypt(password, salt, params)
    return f"$scrypt$ln={params.log2_n},r={params.r},p={params.p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        params, salt, expected = _parse(encoded)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, params), expected)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    try:
        return _parse(encoded)[0] != params
    except ValueError:
        return True


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=1 << params.log2_n, r=params.r,
                          p=params.p, maxmem=params.maxmem, dklen=_HASH_BYTES)


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "scrypt":
        raise ValueError("not a scrypt hash")
    try:
        fields = dict(item.split("=", 1) for item in parts[2].split(","))
        params = ScryptParams(int(fields["ln"]), int(fields["r"]), int(fields["p"]))
        salt, digest = _unb64(parts[3]), _unb64(parts[4])
    except (KeyError, ValueError) as exc:
        raise ValueError("malformed scrypt hash") from exc
    # Bounds keep a tampered row from asking for gigabytes of memory.
    if not (1 <= params.log2_n <= 20 and 1 <= params.r <= 32 and 1 <= params.p <= 16):
        raise ValueError("scrypt parameters out of range")
    return params, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
