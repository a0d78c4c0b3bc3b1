"""Which request paths name an HLS file, and the storage key behind each."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stb_origin.db.types import ID as ASSET_ID
from stb_origin.storage.base import MEDIA_TYPES, InvalidKey, check_key
from stb_origin.storage.layout import asset_prefix

# The names the packager writes: letters, digits, '_', '-', '.', never a leading
# '.' or '-'. Allow-listing shuts out '..', backslashes, NUL and the like at once.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MAX_DEPTH = 4  # {version}/{rendition}/{file} with room to spare
PLAYLIST_EXTENSION = ".m3u8"
SERVED_EXTENSIONS = frozenset({".m3u8", ".m4s", ".mp4", ".ts", ".aac", ".vtt",
                               ".jpg"})


@dataclass(frozen=True)
class HlsPath:
    asset_id: str
    parts: tuple[str, ...]

    @property
    def key(self) -> str:
        return asset_prefix(self.asset_id) + "/".join(self.parts)

    @property
    def extension(self) -> str:
        return "." + self.parts[-1].rpartition(".")[2]

    @property
    def content_type(self) -> str:
        return MEDIA_TYPES[self.extension]

    @property
    def is_playlist(self) -> bool:
        return self.extension == PLAYLIST_EXTENSION

    @property
    def is_versioned(self) -> bool:
        # Published output lives under hls/{id}/{version}/...; a new publish is
        # a new version prefix, so nothing under one ever changes.
        return len(self.parts) > 1


def parse_hls_path(asset_id: str, path: str, raw_path: bytes | None = None) -> HlsPath | None:
    """The file a request names, or None when it names nothing we serve.

    ``path`` is the percent-decoded remainder after ``/hls/{asset_id}/``;
    ``raw_path`` the request target as sent. No served name needs escaping,
    so any '%' in the raw target ('%2e%2e', '%2f', '%252e', '%00') is refused
    rather than decoded and second-guessed.
    """
    if raw_path is not None and b"%" in raw_path:
        return None
    if not ASSET_ID.fullmatch(asset_id):
        return None
    parts = tuple(path.split("/"))
    if not 1 <= len(parts) <= MAX_DEPTH or not all(NAME.fullmatch(part) for part in parts):
        return None
    name = parts[-1]
    if "." not in name or "." + name.rpartition(".")[2] not in SERVED_EXTENSIONS:
        return None
    target = HlsPath(asset_id, parts)
    try:
        check_key(target.key)  # belt and braces: the allow-list already implies it
    except InvalidKey:
        return None
    return target
