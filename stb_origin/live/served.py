"""The origin's generated playlists for channels (``origin.generated``), from the index.

How long each may be cached, by the CDN and by this process alike:

- live and start-over: half a segment duration (at least 1 s), so a box sees a
  new segment about half a segment after it is listed;
- catch-up (ended, never changes): until its first segment is about to leave the
  DVR window, at most an hour; retention deletes a segment only
  ``retention.GRACE_S`` after it left, and nothing outside the window is ever
  listed, so no cached playlist names a segment that is gone;
- the master: a few seconds (a restart with another ladder changes it).

A request that names no channel, no rendition of it, a window outside what the
index holds, or a catch-up window that has not ended gets 404.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import select

from stb_origin.assets.channels import Channel
from stb_origin.db.types import ID
from stb_origin.live import playlists, retention, urls
from stb_origin.live.index import LiveSegment
from stb_origin.live.playlists import Segment
from stb_origin.origin.generated import Generated
from stb_origin.services import Services

MASTER_NAME = "master"
MAX_WINDOW_S = 24 * 3600  # a catch-up or start-over window longer than a day is refused
CATCHUP_MAX_AGE_S = 3600
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Window:
    kind: str  # "live", "event" (start-over) or "vod" (catch-up)
    start: datetime | None = None
    end: datetime | None = None


def parse_window(folder: str) -> Window | None:
    if folder == urls.LIVE:
        return Window("live")
    try:
        if folder.startswith(urls.STARTOVER):
            start = int(folder.removeprefix(urls.STARTOVER))
            return Window("event", _time(start)) if start > 0 else None
        if folder.startswith(urls.CATCHUP):
            first, _, last = folder.removeprefix(urls.CATCHUP).partition("-")
            start, end = int(first), int(last)
            if 0 < start < end <= start + MAX_WINDOW_S:
                return Window("vod", _time(start), _time(end))
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class LivePlaylists:
    def __init__(self, services: Services, clock: Any = time.monotonic) -> None:
        self._services = services
        self._settings = services.settings
        self._clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, Generated | None]] = {}

    def handles(self, parts: tuple[str, ...]) -> bool:
        return (len(parts) == 2 and parts[1].endswith(".m3u8")
                and (parts[0] == urls.LIVE or parts[0].startswith(urls.STARTOVER)
                     or parts[0].startswith(urls.CATCHUP)))

    async def generate(self, content_id: str, parts: tuple[str, ...]) -> Generated | None:
        key = (content_id, parts)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        made, keep_s = await anyio.to_thread.run_sync(self.make, content_id, parts)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now + keep_s, made)
        return made

    def make(self, content_id: str, parts: tuple[str, ...]) -> tuple[Generated | None, float]:
        """The playlist (None: 404) and how long this process may keep it."""
        window = parse_window(parts[0])
        name = parts[1].removesuffix(".m3u8")
        if window is None or not ID.fullmatch(content_id):
            return None, 1.0
        with self._services.db.session() as session:
            channel = session.get(Channel, content_id)
            if channel is None or not channel.renditions:
                return None, 1.0
            renditions = channel.renditions
            segment_s, dvr_window_s = channel.segment_s, channel.dvr_window_s
            if name == MASTER_NAME:
                body = playlists.master_playlist(renditions)
                return self._made(body, f"public, max-age={max(2, math.ceil(segment_s))}",
                                  channel.updated_at), 1.0
            if name not in {r["name"] for r in renditions}:
                return None, 1.0
            oldest = retention.window_start(dvr_window_s, self._settings.live_window_s,
                                            datetime.now(UTC))
            segments = self._segments(session, content_id, window, segment_s, oldest)
        segments = playlists.for_rendition(segments, name)
        if not segments:
            return None, 1.0
        end = segments[-1].starts_at + timedelta(seconds=segments[-1].duration)
        if window.kind == "vod":
            assert window.end is not None
            if end < window.end:
                return None, 1.0  # not over yet: start-over plays it
            expires = (segments[0].starts_at + timedelta(seconds=dvr_window_s)
                       - datetime.now(UTC)).total_seconds()
            max_age = int(min(CATCHUP_MAX_AGE_S, max(1.0, expires)))
        else:
            max_age = max(1, round(segment_s / 2))
        target = playlists.target_duration(segment_s, segments)
        body = playlists.media_playlist(segments, name, target, self._key_uri(content_id),
                                        window.kind)
        return self._made(body, f"public, max-age={max_age}", end), min(max_age, 60) / 2

    def _segments(self, session: Any, channel_id: str, window: Window,
                  segment_s: float, oldest: datetime) -> list[Segment]:
        """The window's rows, none older than ``oldest`` (retention's business)."""
        table = LiveSegment.__table__.c
        query = select(table.seq, table.starts_at, table.duration, table.discontinuity,
                       table.epoch, table.key_id, table.iv, table.renditions
                       ).where(table.channel_id == channel_id, table.starts_at >= oldest)
        if window.kind == "live":
            count = math.ceil(self._settings.live_window_s / segment_s)
            rows = list(session.execute(query.order_by(table.seq.desc()).limit(count)))
            rows.reverse()
        else:
            assert window.start is not None
            # A segment that began before the start but runs into it is the first.
            slack = timedelta(seconds=4 * max(segment_s, 1.0))
            query = query.where(table.starts_at > window.start - slack)
            if window.end is not None:
                query = query.where(table.starts_at < window.end)
            rows = list(session.execute(query.order_by(table.seq)))
        segments = [Segment(r.seq, r.starts_at, r.duration, r.discontinuity, r.epoch, r.key_id,
                            r.iv, tuple(r.renditions)) for r in rows]
        if window.start is not None:
            segments = [s for s in segments
                        if s.starts_at + timedelta(seconds=s.duration) > window.start]
        return segments

    def _key_uri(self, channel_id: str) -> playlists.KeyUri:
        base = self._settings.key_uri_base
        return lambda key_id: f"{base}/keys/{channel_id}/{key_id}"

    @staticmethod
    def _made(body: str, cache_control: str, last_modified: datetime) -> Generated:
        return Generated(body.encode(), cache_control, last_modified)
