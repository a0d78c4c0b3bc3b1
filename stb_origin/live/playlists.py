"""A channel's playlists, written from its segment index (``live.index``).

One writer for the three kinds, which differ only in which rows they list and
how they end:

- live: the last ``live_window_s`` of segments, a sliding window;
- start-over: every segment from a time to now (``EXT-X-PLAYLIST-TYPE:EVENT``);
- catch-up: every segment of a past window (``VOD``, ``EXT-X-ENDLIST``).

Every segment carries its ``EXT-X-PROGRAM-DATE-TIME`` and its key line (each has
its own IV); a segment whose discontinuity number differs from the one before it
gets ``EXT-X-DISCONTINUITY``, and ``EXT-X-DISCONTINUITY-SEQUENCE`` is the first
listed segment's number, so a player that reloads a window which slid past a
discontinuity still counts the same. ``EXT-X-MEDIA-SEQUENCE`` is the index's
sequence number, which no runner ever reuses. Nothing here comes from users:
rendition names, key ids and numbers are the system's own.

Written by hand rather than with the ``m3u8`` library: a four-hour start-over
lists 7,200 segments and must render in milliseconds (bench/live.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stb_origin.live import urls

VERSION = 3  # IV on EXT-X-KEY needs 2; PROGRAM-DATE-TIME and float EXTINF need 3


@dataclass(frozen=True)
class Segment:
    seq: int
    starts_at: datetime
    duration: float
    discontinuity: int
    epoch: int
    key_id: str
    iv: str  # hex
    renditions: tuple[str, ...]


KeyUri = Callable[[str], str]
SegmentUri = Callable[[str, Segment], str]  # (rendition, segment) -> URI


def channel_segment_uri(rendition: str, segment: Segment) -> str:
    return urls.segment_uri(rendition, segment.epoch, segment.seq)


def target_duration(segment_s: float, segments: Sequence[Segment]) -> int:
    """The channel's segment duration, rounded up; more only if a segment was longer
    (a passthrough source's key frames decide where its segments end)."""
    longest = max((round(s.duration) for s in segments), default=0)
    return max(math.ceil(segment_s), longest, 1)


def rendition_run(segments: Sequence[Segment], rendition: str) -> int:
    """Where the rendition's segments begin: the unbroken run of them up to the newest
    (a ladder change is a discontinuity; a rendition it dropped ends there)."""
    start = len(segments)
    while start > 0 and rendition in segments[start - 1].renditions:
        start -= 1
    return start


def segment_head(segment: Segment, key_uri: KeyUri) -> str:
    """A segment's lines before its URI (the same in every rendition)."""
    return (f'#EXT-X-KEY:METHOD=AES-128,URI="{key_uri(segment.key_id)}",IV=0x{segment.iv}\n'
            f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(segment.starts_at)}\n"
            f"#EXTINF:{segment.duration:.3f},\n")


def media_playlist(segments: Sequence[Segment], rendition: str, target: int, key_uri: KeyUri,
                   kind: str, heads: Sequence[str] | None = None,
                   segment_uri: SegmentUri = channel_segment_uri) -> str:
    """kind: "live", "event" or "vod". ``heads``: each segment's ``segment_head``, when
    the caller keeps them (a four-hour start-over lists 7,200 segments).
    ``segment_uri``: where a segment is, from the playlist (a clip has its own)."""
    if heads is None:
        heads = [segment_head(segment, key_uri) for segment in segments]
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", f"#EXT-X-TARGETDURATION:{target}"]
    if kind == "event":
        lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
    elif kind == "vod":
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    if segments:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{segments[0].seq}")
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{segments[0].discontinuity}")
    parts = ["\n".join(lines), "\n"]
    previous: Segment | None = None
    for segment, head in zip(segments, heads, strict=True):
        if previous is not None and segment.discontinuity != previous.discontinuity:
            parts.append("#EXT-X-DISCONTINUITY\n")
        parts.append(head)
        parts.append(segment_uri(rendition, segment) + "\n")
        previous = segment
    if kind == "vod":
        parts.append("#EXT-X-ENDLIST\n")
    return "".join(parts)


def master_playlist(renditions: Sequence[dict[str, Any]],
                    variant_uri: Callable[[str], str] = lambda name: f"{name}.m3u8") -> str:
    """Tallest first, as the runner recorded them; each variant's playlist beside it
    (``variant_uri``: a clip's sit in folders, as an asset's do)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rendition in renditions:
        attributes = [f"BANDWIDTH={int(rendition['bandwidth'])}"]
        if rendition.get("codecs"):
            attributes.append(f'CODECS="{rendition["codecs"]}"')
        if rendition.get("width") and rendition.get("height"):
            attributes.append(f"RESOLUTION={int(rendition['width'])}x{int(rendition['height'])}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(variant_uri(rendition["name"]))
    return "\n".join(lines) + "\n"


def _pdt(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
