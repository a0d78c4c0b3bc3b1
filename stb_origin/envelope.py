"""Envelope encryption: secrets at rest sealed with AES-256-GCM under a key-encryption key.

Every secret the system keeps (content keys, token-signing keys) is stored only
sealed, with a context and the ids it belongs to bound in as associated data,
so a sealed blob copied to another row fails to open instead of silently
decrypting someone else's secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stb_origin.secretfiles import load_or_create
from stb_origin.settings import Settings

KEK_BYTES = 32
NONCE_BYTES = 12
ENVELOPE_VERSION = 1


class KekError(ValueError):
    """The key-encryption key is missing, malformed or unsafely stored."""


class UnwrapError(Exception):
    """A sealed secret failed to authenticate: tampered, moved, or under another KEK."""


class Envelope:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise KekError(f"the key-encryption key must be {KEK_BYTES} bytes, not {len(kek)}")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "Envelope(kek=<hidden>)"

    def seal(self, secret: bytes, context: bytes, *ids: str) -> bytes:
        """version byte || 12-byte nonce || ciphertext+tag, bound to context and ids."""
        nonce = os.urandom(NONCE_BYTES)
        header = bytes([ENVELOPE_VERSION])
        return header + nonce + self._aead.encrypt(nonce, secret, _aad(header, context, ids))

    def open(self, blob: bytes, context: bytes, *ids: str) -> bytes:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != ENVELOPE_VERSION:
            raise UnwrapError("unrecognised wrapped secret")
        header, nonce, sealed = blob[:1], blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, _aad(header, context, ids))
        except InvalidTag:
            raise UnwrapError("wrapped secret failed to authenticate") from None


def _aad(header: bytes, context: bytes, ids: tuple[str, ...]) -> bytes:
    # NUL separators: ids never contain NUL, so ("ab","c") and ("a","bc") differ.
    return b"\x00".join([context, header, *(i.encode() for i in ids)])


def read_kek(value: str | None, env_name: str, path: Path) -> bytes:
    """32 bytes from base64 ``value`` if set, else from ``path`` (made on first use, 0600)."""
    if value:
        try:
            kek = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KekError(f"{env_name} must be base64 of 32 random bytes"
                           " (e.g. `openssl rand -base64 32`)") from None
        if len(kek) != KEK_BYTES:
            raise KekError(f"{env_name} decodes to {len(kek)} bytes; it must be"
                           f" base64 of {KEK_BYTES} bytes (e.g. `openssl rand -base64 32`)")
        return kek

    kek = load_or_create(path, lambda: os.urandom(KEK_BYTES))
    if len(kek) != KEK_BYTES:
        raise KekError(f"{path} holds {len(kek)} bytes, not {KEK_BYTES}; restore it from backup"
                       " (everything wrapped under it is lost otherwise)")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise KekError(f"{path} is readable by other users; run: chmod 600 {path}")
    return kek


def load_kek(settings: Settings) -> bytes:
    """The content keys' KEK: STB_KEY_ENCRYPTION_KEY, else secrets_dir/kek (made on first use)."""
    return read_kek(settings.key_encryption_key, "STB_KEY_ENCRYPTION_KEY",
                    settings.secrets_dir / "kek")
