"""Reading a published WebVTT rendition back the way a player does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stb_origin.transcode.webvtt import parse_webvtt

_MAP = re.compile(r"^X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\d\d):(\d\d):(\d\d)\.(\d{3})$", re.M)


@dataclass(frozen=True)
class ShownCue:
    start: float  # seconds from the first video frame, as a player places it
    end: float
    text: str


def shown_cues(segment: str, first_video_pts: int) -> list[ShownCue]:
    """A segment's cues on the presentation timeline: cue time - LOCAL + (MPEGTS -
    the video's first PTS) / 90 kHz, as hls.js's webvtt-parser computes it."""
    match = _MAP.search(segment)
    assert match is not None, segment[:200]
    mpegts = int(match.group(1))
    hours, minutes, seconds, millis = (int(g) for g in match.groups()[1:])
    local = hours * 3600 + minutes * 60 + seconds + millis / 1000
    offset = (mpegts - first_video_pts) / 90_000 - local
    return [ShownCue(c.start + offset, c.end + offset, c.text) for c in parse_webvtt(segment)]
