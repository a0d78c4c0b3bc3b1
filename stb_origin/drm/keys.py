"""Content keys and their envelope: AES-256-GCM wrapping under a key-encryption key.

A content key is the 16-byte AES-128 key a player fetches to decrypt segments.
At rest it is only ever stored wrapped under the KEK, with the asset id and key
id bound in as associated data, so a wrapped key copied to another asset's row
(or renamed) fails to unwrap instead of silently decrypting someone else's
content.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stb_origin.secrets import load_or_create
from stb_origin.settings import Settings

CONTENT_KEY_BYTES = 16
KEK_BYTES = 32
NONCE_BYTES = 12
ENVELOPE_VERSION = 1
_AAD_CONTEXT = b"stb-origin/content-key"
# Key ids travel in key URIs and storage paths: URL-safe, bounded.
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class KekError(ValueError):
    """The key-encryption key is missing, malformed or unsafely stored."""


class UnwrapError(Exception):
    """A wrapped key failed to authenticate: tampered, moved, or under another KEK."""


@dataclass(frozen=True)
class ContentKey:
    key_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != CONTENT_KEY_BYTES:
            raise ValueError(f"a content key is {CONTENT_KEY_BYTES} bytes, not {len(self.key)}")
        if not KEY_ID.match(self.key_id):
            raise ValueError(f"invalid key id {self.key_id!r}")


def generate_key() -> ContentKey:
    # 64-bit ids are plenty: they only need to be unique within one asset.
    return ContentKey(key_id=secrets.token_hex(8), key=os.urandom(CONTENT_KEY_BYTES))


class Envelope:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEK_BYTES:
            raise KekError(f"the key-encryption key must be {KEK_BYTES} bytes, not {len(kek)}")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "Envelope(kek=<hidden>)"

    def wrap(self, asset_id: str, ck: ContentKey) -> bytes:
        return self.seal(ck.key, _AAD_CONTEXT, asset_id, ck.key_id)

    def unwrap(self, asset_id: str, key_id: str, blob: bytes) -> bytes:
        try:
            key = self.open(blob, _AAD_CONTEXT, asset_id, key_id)
        except UnwrapError:
            raise UnwrapError(f"wrapped key for {asset_id}/{key_id} failed to authenticate"
                              " (tampered, moved from another asset, or another KEK)") from None
        if len(key) != CONTENT_KEY_BYTES:
            raise UnwrapError(f"wrapped key for {asset_id}/{key_id} has the wrong length")
        return key

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


def load_kek(settings: Settings) -> bytes:
    """The KEK from STB_KEY_ENCRYPTION_KEY, else from secrets_dir/kek (made on first use)."""
    return read_kek(settings.key_encryption_key, "STB_KEY_ENCRYPTION_KEY",
                    settings.secrets_dir / "kek")


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


__all__ = ["ContentKey", "Envelope", "KekError", "UnwrapError", "generate_key", "load_kek",
           "read_kek"]
