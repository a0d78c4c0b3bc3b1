"""Where a channel's playlists and segments are, under the same /hls/{id}/ as an asset's.

A channel id shares the assets' namespace, so the origin's access checks, URL
signing (the token's acl is the channel id), the CDN's configuration and its
cache key apply to live unchanged. Every playlist sits one folder below the
channel, so that one relative segment URI (``../seg/...``) works from all of
them and inherits a signed URL's ``st=`` segment::

    /hls/{channel}/live/master.m3u8                the live master
    /hls/{channel}/live/{rendition}.m3u8            a sliding window
    /hls/{channel}/startover-{start}/...            from start to now, growing (EVENT)
    /hls/{channel}/catchup-{start}-{end}/...        a past window, ENDLIST
    /hls/{channel}/seg/{rendition}/{epoch}-{seq}.ts a segment (storage: the same key)

``start`` and ``end`` are Unix seconds: a programme's times, so every box
watching the same programme asks for the same URL and the CDN answers most.
"""

from __future__ import annotations

from datetime import datetime

from stb_origin.storage.layout import asset_prefix

LIVE = "live"
STARTOVER = "startover-"
CATCHUP = "catchup-"
SEGMENTS = "seg"
MASTER = "master.m3u8"


def _seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("a time zone is required")
    return int(at.timestamp())


def live_master(channel_id: str) -> str:
    return f"/{asset_prefix(channel_id)}{LIVE}/{MASTER}"


def startover_master(channel_id: str, start: datetime) -> str:
    return f"/{asset_prefix(channel_id)}{STARTOVER}{_seconds(start)}/{MASTER}"


def catchup_master(channel_id: str, start: datetime, end: datetime) -> str:
    return f"/{asset_prefix(channel_id)}{CATCHUP}{_seconds(start)}-{_seconds(end)}/{MASTER}"


def segment_key(channel_id: str, rendition: str, epoch: int, seq: int) -> str:
    """The storage key of a segment; its URL is the same path under /."""
    return f"{asset_prefix(channel_id)}{SEGMENTS}/{rendition}/{epoch}-{seq}.ts"


def segment_uri(rendition: str, epoch: int, seq: int) -> str:
    """A segment as every playlist of the channel names it (they sit one folder down)."""
    return f"../{SEGMENTS}/{rendition}/{epoch}-{seq}.ts"
