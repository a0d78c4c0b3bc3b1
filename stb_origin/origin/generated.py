"""Playlists the origin writes on request instead of reading from storage.

A channel's playlists (``live``) are made from its segment index at each ask,
under the same /hls/{id}/ paths, access checks, CORS and conditional-request
rules as stored files. The origin only knows this interface; the app passes the
live domain's implementation in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Generated:
    body: bytes
    cache_control: str
    last_modified: datetime


class GeneratedPlaylists(Protocol):
    def handles(self, parts: tuple[str, ...]) -> bool:
        """Whether the path under /hls/{id}/ names a generated playlist (pure, cheap)."""
        ...

    async def generate(self, content_id: str, parts: tuple[str, ...]) -> Generated | None:
        """The playlist, or None for 404."""
        ...
