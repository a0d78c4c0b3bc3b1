"""WebVTT cues: read from a file (a sidecar upload), cut into HLS segments.

Cue text is kept as plain text: styling (WebVTT tags, ASS overrides that ffmpeg
turned into tags) is dropped, and the text is escaped again on the way out, so
nothing from an upload can open a tag, end a cue early (a blank line) or forge
a timing line ("-->").

Each segment starts ``X-TIMESTAMP-MAP=MPEGTS:<m>,LOCAL:00:00:00.000``: cue time 0
is the first video frame, whose presentation time is m in 90 kHz units. hls.js
(``webvtt-parser.ts``) subtracts the main stream's start from m: in TS the first
PTS, so m is the video's first PTS; in fMP4 the first fragment's decode time
(tfdt, ``passthrough-remuxer.ts``), with no edit list applied, so m is the first
frame's time on that same timeline: tfdt plus its composition offset, which
is where the frame lands when the edit list is not applied either.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

MPEGTS_WRAP = 2**33  # PTS are 33-bit
_TIME = re.compile(r"(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})")
_TIMING = re.compile(rf"^\s*({_TIME.pattern})\s+-->\s+({_TIME.pattern})(?:\s.*)?$")
_TAG = re.compile(r"<[^>]*>")
_NOT_CUES = ("NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds from the first video frame
    end: float
    text: str  # plain text, one or more non-empty lines joined by "\n"


def parse_webvtt(text: str, shift_s: float = 0.0) -> list[Cue]:
    """The cues of a WebVTT file, moved by shift_s; ValueError naming the line of a
    timing that cannot be read. Cues with no text or ending by time 0 are dropped;
    one starting before 0 starts at 0."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise ValueError("line 1: a WebVTT file starts with WEBVTT")
    cues = []
    for first, block in _blocks(lines):
        if block[0].startswith(_NOT_CUES) or first == 0:
            continue  # the header, comments, style sheets and regions
        timing = next((n for n, line in enumerate(block[:2]) if "-->" in line), None)
        if timing is None:
            continue  # text outside any cue: WebVTT parsers skip it too
        match = _TIMING.match(block[timing])
        if match is None:
            raise ValueError(f"line {first + timing + 1}: not a cue timing:"
                             f" {block[timing][:80]!r}")
        start = _seconds(match.group(1)) + shift_s
        end = _seconds(match.group(6)) + shift_s
        plain = plain_text("\n".join(block[timing + 1:]))
        if plain and end > max(start, 0.0):
            cues.append(Cue(max(start, 0.0), end, plain))
    return cues


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(index of its first line, its lines) of each run of lines between blank ones."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for n, line in enumerate([*lines, ""]):
        if line.strip():
            current.append(line)
        elif current:
            blocks.append((n - len(current), current))
            current = []
    return blocks


def plain_text(payload: str) -> str:
    """Cue text without tags, entities decoded, no control characters, no empty lines."""
    text = html.unescape(_TAG.sub("", payload))
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char == "\n" or category in ("Zl", "Zp"):
            kept.append("\n")
        elif category == "Cc":
            kept.append(" ")
        else:
            kept.append(char)
    lines = (" ".join(line.split()) for line in "".join(kept).split("\n"))
    return "\n".join(line for line in lines if line)


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def segment_webvtt(cues: Sequence[Cue], boundaries: Sequence[float], mpegts: int) -> list[str]:
    """One WebVTT file per segment [boundaries[i], boundaries[i + 1]).

    A cue goes into every segment it overlaps, with its own times (players drop
    the repeat), so a player that starts or seeks into any segment shows it; the
    last segment also takes what runs past the end.
    """
    if len(boundaries) < 2:
        raise ValueError("segments need at least two boundaries")
    header = (f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts % MPEGTS_WRAP},"
              "LOCAL:00:00:00.000\n\n")
    segments = []
    last = len(boundaries) - 2
    for i in range(last + 1):
        start, end = boundaries[i], boundaries[i + 1]
        inside = [c for c in cues if c.end > start and (i == last or c.start < end)]
        segments.append(header + "".join(
            f"{_stamp(c.start)} --> {_stamp(c.end)}\n{escaped(c.text)}\n\n" for c in inside))
    return segments


def _seconds(stamp: str) -> float:
    match = _TIME.fullmatch(stamp)
    if match is None:
        raise ValueError(f"not a WebVTT time: {stamp!r}")
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _stamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
