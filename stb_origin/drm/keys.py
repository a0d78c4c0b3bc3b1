"""Content keys, and how they are wrapped in the envelope (see ``stb_origin.envelope``).

A content key is the 16-byte AES-128 key a player fetches to decrypt segments.
At rest it is only ever stored wrapped under the KEK, with the asset id and key
id bound in as associated data, so a wrapped key copied to another asset's row
(or renamed) fails to unwrap instead of silently decrypting someone else's
content.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from stb_origin.envelope import Envelope, UnwrapError

CONTENT_KEY_BYTES = 16
_AAD_CONTEXT = b"stb-origin/content-key"
# Key ids travel in key URIs and storage paths: URL-safe, bounded.
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def key_uri(base: str, content_id: str) -> Callable[[str], str]:
    """Where a player fetches an asset's or a channel's key, by key id (drm.routes
    serves /keys/{content_id}/{key_id}; ``base`` is the key server's origin)."""
    return lambda key_id: f"{base}/keys/{content_id}/{key_id}"


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


def wrap(envelope: Envelope, asset_id: str, ck: ContentKey) -> bytes:
    return envelope.seal(ck.key, _AAD_CONTEXT, asset_id, ck.key_id)


def unwrap(envelope: Envelope, asset_id: str, key_id: str, blob: bytes) -> bytes:
    try:
        key = envelope.open(blob, _AAD_CONTEXT, asset_id, key_id)
    except UnwrapError:
        raise UnwrapError(f"wrapped key for {asset_id}/{key_id} failed to authenticate"
                          " (tampered, moved from another asset, or another KEK)") from None
    if len(key) != CONTENT_KEY_BYTES:
        raise UnwrapError(f"wrapped key for {asset_id}/{key_id} has the wrong length")
    return key
