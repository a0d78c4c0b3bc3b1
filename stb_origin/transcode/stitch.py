"""Put the spans' video together into the out_dir one run would have written.

Each span's folder has, per video rendition and trick-play track, a
media playlist, its segments (already numbered as in the whole, see spans.py)
and, in fMP4, an init section. The stitched playlist is the first span's
header and every span's segments in order; the first span's init section
serves them all (same encoder settings, so the same codec configuration), and
the fMP4 segments of later spans get their decode times moved to where they
are in the whole (ffmpeg's mp4 muxer starts each output at 0; MPEG-TS keeps
the source's time stamps).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from stb_origin.storage.layout import MEDIA_PLAYLIST
from stb_origin.transcode import fixups
from stb_origin.transcode.ladder import Ladder, exact_rate
from stb_origin.transcode.spans import Span


def stitch(span_dirs: Sequence[Path], spans: Sequence[Span], ladder: Ladder,
           out_dir: Path) -> None:
    if [s.index for s in spans] != list(range(len(span_dirs))):
        raise ValueError("one folder per span, in order")
    if not ladder.renditions:
        raise ValueError("an audio-only ladder has no spans")
    seg = Fraction(ladder.segment_seconds).limit_denominator(1000)
    rate = exact_rate(ladder.fps)
    for rendition in ladder.renditions:
        _stitch_track(rendition.name, span_dirs, out_dir,
                      [Fraction(s.start_frame) / rate for s in spans])
    for trick in ladder.iframes:
        _stitch_track(trick.name, span_dirs, out_dir, [s.start_unit * seg for s in spans])


def _stitch_track(name: str, span_dirs: Sequence[Path], out_dir: Path,
                  starts: Sequence[Fraction]) -> None:
    target = out_dir / name
    target.mkdir(parents=True, exist_ok=True)
    first = (span_dirs[0] / name / MEDIA_PLAYLIST).read_text()
    init = fixups.init_uri(first)
    ticks_per_s = 0
    if init is not None:
        shutil.move(span_dirs[0] / name / init, target / init)
        ticks_per_s = fixups.timescale((target / init).read_bytes())
    header: list[str] = []
    segments: list[tuple[float, str]] = []
    for n, (span_dir, start) in enumerate(zip(span_dirs, starts, strict=True)):
        lines = (span_dir / name / MEDIA_PLAYLIST).read_text().splitlines()
        head, listed, _tail = fixups.split_segments(lines)
        if n == 0:
            header = head
        shift = _ticks(start, ticks_per_s) if init is not None else 0
        for extinf, uri in listed:
            data = (span_dir / name / uri).read_bytes()
            (target / uri).write_bytes(fixups.shifted_fmp4(data, shift) if shift else data)
            segments.append((extinf, uri))
    longest = max(math.floor(extinf + 0.5) for extinf, _ in segments)
    header = [f"#EXT-X-TARGETDURATION:{longest}" if line.startswith("#EXT-X-TARGETDURATION:")
              else line for line in header]
    body = [line for extinf, uri in segments for line in (f"#EXTINF:{extinf:.6f},", uri)]
    (target / MEDIA_PLAYLIST).write_text("\n".join([*header, *body, "#EXT-X-ENDLIST", ""]))


def _ticks(seconds: Fraction, ticks_per_s: int) -> int:
    ticks = seconds * ticks_per_s
    if ticks.denominator != 1:
        raise ValueError(f"a span starting at {float(seconds)} s is not a whole number of"
                         f" ticks at {ticks_per_s}/s")
    return int(ticks)
