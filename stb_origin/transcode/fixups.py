"""Pure edits to the media playlists ffmpeg's hls muxer writes, so out_dir matches the layout.

Four things ffmpeg 5.1 cannot be told to do:
- with several variants it names each init segment "init_<index>.mp4";
- cut video into segments of several GOPs, short ones first (argv.hls_time): it
  cuts every GOP, and the parts are joined (gop_groups);
- the trick-play track (fps=1/SEG) gives its last frame a whole segment
  duration, and when the video ends just after a segment boundary it emits one
  frame more than there are segments (a boundary inside the last frame's time);
- cut audio-only variants on the video's segment boundaries (see below).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+),", re.MULTILINE)
_MAP = re.compile(r'^#EXT-X-MAP:URI="([^"]+)"', re.MULTILINE)


def durations(playlist: str) -> list[str]:
    """The EXTINF values, as written."""
    return _EXTINF.findall(playlist)


def init_uri(playlist: str) -> str | None:
    match = _MAP.search(playlist)
    return match.group(1) if match else None


def with_init_uri(playlist: str, uri: str) -> str:
    return _MAP.sub(f'#EXT-X-MAP:URI="{uri}"', playlist, count=1)


def retimed(playlist: str, reference: list[str]) -> tuple[str, list[str]]:
    """The playlist with the reference's durations and at most as many segments.

    Returns the new text and the URIs of the segments dropped from its end.
    """
    lines = playlist.splitlines()
    out: list[str] = []
    dropped: list[str] = []
    index = 0
    pending_drop = False
    for line in lines:
        if _EXTINF.match(line):
            if index < len(reference):
                out.append(f"#EXTINF:{reference[index]},")
            else:
                pending_drop = True
            index += 1
        elif line and not line.startswith("#") and pending_drop:
            dropped.append(line)
            pending_drop = False
        else:
            out.append(line)
    return "\n".join(out) + "\n", dropped


# Audio-only tracks ---------------------------------------------------------------------
# The hls muxer cuts an audio-only variant every hls_time (any audio packet may start
# a segment), video only on its key frames: with short first segments (2, 2, 2, then
# 6 s) an audio track has several segments where the video has one. Joining them
# gives every track the same segments, so segment i has the same key everywhere.

# How far apart an audio and a video boundary may be and still be the same one: an
# audio frame (21 to 32 ms) and a video frame (up to 42 ms), with room to spare.
BOUNDARY_SLACK_S = 0.25


def extinf_values(playlist: str) -> list[float]:
    return [float(d) for d in durations(playlist)]


def grouping(track: Sequence[float], reference: Sequence[float]) -> list[int]:
    """How many consecutive segments of a track make each reference segment: each
    group ends on the track's boundary nearest the reference's. ValueError when
    some reference boundary has no track boundary within BOUNDARY_SLACK_S of it."""
    ends = list(itertools.accumulate(track))
    counts: list[int] = []
    start, target = 0, 0.0
    for length in reference[:-1]:
        target += length
        if start >= len(ends):
            raise ValueError(f"the track ends before {target:.3f} s")
        best = min(range(start, len(ends)), key=lambda j: abs(ends[j] - target))
        if abs(ends[best] - target) > BOUNDARY_SLACK_S:
            raise ValueError(f"no segment boundary of the track near {target:.3f} s")
        counts.append(best - start + 1)
        start = best + 1
    if start >= len(ends):
        raise ValueError("the track ends before the last reference segment")
    return [*counts, len(ends) - start]


def gop_groups(parts: int, gops_per_short: int, short_count: int,
               gops_per_segment: int) -> list[int]:
    """How many consecutive one-GOP parts make each segment: short_count segments
    of gops_per_short, then gops_per_segment each; the last takes what is left."""
    counts: list[int] = []
    left = parts
    while left > 0:
        size = gops_per_short if len(counts) < short_count else gops_per_segment
        counts.append(min(size, left))
        left -= counts[-1]
    return counts


def regrouped(playlist: str, counts: Sequence[int]) -> tuple[str, list[list[str]]]:
    """The playlist with each run of counts[k] segments as one, named by its first
    URI, and those runs of URIs."""
    head, segments, tail = split_segments(playlist.splitlines())
    if sum(counts) != len(segments):
        raise ValueError(f"{len(segments)} segments, groups for {sum(counts)}")
    out, runs, at = list(head), [], 0
    for count in counts:
        run = segments[at:at + count]
        at += count
        out += [f"#EXTINF:{sum(d for d, _ in run):.6f},", run[0][1]]
        runs.append([uri for _, uri in run])
    return "\n".join(out + tail) + "\n", runs


def split_segments(lines: list[str]) -> tuple[list[str], list[tuple[float, str]], list[str]]:
    """(lines before the segments, (duration, URI) of each, lines after them)."""
    first = next(i for i, line in enumerate(lines) if _EXTINF.match(line))
    segments, at = [], first
    while at < len(lines) and (match := _EXTINF.match(lines[at])):
        uri = lines[at + 1] if at + 1 < len(lines) else ""
        if not uri or uri.startswith("#"):
            raise ValueError("a segment with tags between its EXTINF and its URI")
        segments.append((float(match.group(1)), uri))
        at += 2
    if any(_EXTINF.match(line) for line in lines[at:]):
        raise ValueError("tags between segments")
    return lines[:first], segments, lines[at:]


def joined_fmp4(parts: Sequence[bytes]) -> bytes:
    """fMP4 media segments as one: the first one's styp, then every fragment, and no
    sidx (each would index only the fragment after it)."""
    out = bytearray()
    for n, part in enumerate(parts):
        for kind, box in _top_level_boxes(part):
            if kind == b"sidx" or (kind == b"styp" and n > 0):
                continue
            out += box
    return bytes(out)


def _top_level_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        elif size == 0:
            size = len(data) - pos
        if size < 8 or pos + size > len(data):
            raise ValueError("a truncated or malformed fMP4 box")
        yield data[pos + 4:pos + 8], data[pos:pos + size]
        pos += size


def timescale(init: bytes) -> int:
    """The media timescale (ticks per second) of an fMP4 init section's one track."""
    mdhd = _find(init, (b"moov", b"trak", b"mdia", b"mdhd"))
    # FullBox: version, flags, then creation and modification times (32 or 64 bits).
    at = 4 + (16 if mdhd[0] == 1 else 8)
    return int.from_bytes(mdhd[at:at + 4], "big")


def shifted_fmp4(segment: bytes, ticks: int) -> bytes:
    """The segment with every fragment's decode time (tfdt) moved by ticks.

    ffmpeg's mp4 muxer starts every output at decode time 0; a span's segments
    must go on from where the span before them ended.
    """
    out = bytearray(segment)
    for offset, tfdt in _tfdt_boxes(segment):
        wide = tfdt[0] == 1
        field = slice(offset + 4, offset + (12 if wide else 8))
        value = int.from_bytes(out[field], "big") + ticks
        out[field] = value.to_bytes(8 if wide else 4, "big")
    return bytes(out)


def _tfdt_boxes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset of the payload in data, payload) of each moof/traf/tfdt."""
    for moof_at, (kind, moof) in _boxes_at(data, 0):
        if kind != b"moof":
            continue
        for traf_at, (kind, traf) in _boxes_at(moof[8:], moof_at + 8):
            if kind != b"traf":
                continue
            for tfdt_at, (kind, tfdt) in _boxes_at(traf[8:], traf_at + 8):
                if kind == b"tfdt":
                    yield tfdt_at + 8, tfdt[8:]


def _boxes_at(data: bytes, base: int) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
    at = base
    for kind, box in _top_level_boxes(data):
        yield at, (kind, box)
        at += len(box)


def _find(data: bytes, path: tuple[bytes, ...]) -> bytes:
    """The payload of the first box at path (each a child of the one before)."""
    for kind in path:
        box = next((box for k, box in _top_level_boxes(data) if k == kind), None)
        if box is None:
            raise ValueError(f"no {kind.decode()} box in the fMP4 init section")
        data = box[8:]
    return data
