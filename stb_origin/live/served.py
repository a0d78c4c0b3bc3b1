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

import bisect
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import select

from stb_origin.assets.channels import Channel
from stb_origin.db.types import ID
from stb_origin.drm.keys import key_uri
from stb_origin.live import playlists, retention, urls
from stb_origin.live.index import LiveSegment
from stb_origin.live.playlists import Segment
from stb_origin.origin.generated import Generated
from stb_origin.services import Services

MASTER_NAME = "master"
MAX_WINDOW_S = 24 * 3600  # a catch-up or start-over window longer than a day is refused
CATCHUP_MAX_AGE_S = 3600
MAX_CACHED = 10_000
# Channels whose index this process keeps (about 1.5 MB each with a 4-hour window).
MAX_INDEXES = 100


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


@dataclass
class _Index:
    """A channel's listed segments as this process last read them, oldest first, with
    each one's lines before its URI made once."""

    segments: list[Segment] = field(default_factory=list)
    starts: list[datetime] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def forget_before(self, oldest: datetime) -> None:
        drop = bisect.bisect_left(self.starts, oldest)
        if drop:
            del self.segments[:drop], self.starts[:drop], self.heads[:drop]

    def copy(self) -> _Index:
        """A snapshot (lists copied, items shared) to read without the lock."""
        return _Index(self.segments[:], self.starts[:], self.heads[:])

    def window(self, window: Window, segment_s: float, live_window_s: float) -> tuple[int, int]:
        """[first, last) of the segments a playlist of ``window`` lists."""
        if window.kind == "live":
            return max(0, len(self.segments) - math.ceil(live_window_s / segment_s)), \
                len(self.segments)
        assert window.start is not None
        # The first segment is the one running at the start (it ends after it).
        first = max(0, bisect.bisect_right(self.starts, window.start) - 1)
        if first < len(self.segments) and self.segments[first].starts_at + timedelta(
                seconds=self.segments[first].duration) <= window.start:
            first += 1
        last = (len(self.segments) if window.end is None
                else bisect.bisect_left(self.starts, window.end))
        return first, max(first, last)


class LivePlaylists:
    def __init__(self, services: Services, clock: Any = time.monotonic) -> None:
        self._services = services
        self._settings = services.settings
        self._clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, Generated | None]] = {}
        self._indexes: dict[str, _Index] = {}
        self._lock = threading.Lock()

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
            index = self._index(session, content_id, oldest)
        first, last = index.window(window, segment_s, self._settings.live_window_s)
        first += playlists.rendition_run(index.segments[first:last], name)
        segments, heads = index.segments[first:last], index.heads[first:last]
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
                                        window.kind, heads)
        return self._made(body, f"public, max-age={max_age}", end), min(max_age, 60) / 2

    def _index(self, session: Any, channel_id: str, oldest: datetime) -> _Index:
        """The channel's rows from ``oldest`` on: what this process read before, and the
        rows listed since (rows never change once listed, and are listed in order)."""
        with self._lock:
            index = self._indexes.pop(channel_id, None) or _Index()
            self._indexes[channel_id] = index  # the most recently used last
            while len(self._indexes) > MAX_INDEXES:
                self._indexes.pop(next(iter(self._indexes)))
        with index.lock:
            table = LiveSegment.__table__.c
            query = select(table.seq, table.starts_at, table.duration, table.discontinuity,
                           table.epoch, table.key_id, table.iv, table.renditions
                           ).where(table.channel_id == channel_id, table.starts_at >= oldest)
            if index.segments:
                query = query.where(table.seq > index.segments[-1].seq)
            key_uri = self._key_uri(channel_id)
            for row in session.execute(query.order_by(table.seq)):
                segment = Segment(row.seq, row.starts_at, row.duration, row.discontinuity,
                                  row.epoch, row.key_id, row.iv, tuple(row.renditions))
                index.segments.append(segment)
                index.starts.append(segment.starts_at)
                index.heads.append(playlists.segment_head(segment, key_uri))
            index.forget_before(oldest)
            return index.copy()

    def _key_uri(self, channel_id: str) -> playlists.KeyUri:
        return key_uri(self._settings.key_uri_base, channel_id)

    @staticmethod
    def _made(body: str, cache_control: str, last_modified: datetime) -> Generated:
        return Generated(body.encode(), cache_control, last_modified)
