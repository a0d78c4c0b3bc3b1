"""Long masters cut into spans that different workers encode, on segment boundaries.

A span is a run of whole segments of the output: frames [start_frame, end_frame)
at the ladder's output rate, counted from the start of the source as one run
counts them. Each span's ffmpeg seeks a little before its first frame, keeps the
source's time stamps (``-copyts -start_at_zero``), and trims exactly to its frames
after the frame-rate filter, where time stamps are frame numbers; so the frames
and key frames of the spans, put end to end (``stitch.py``), are the frames and
key frames the one-run path makes.

The first span is the one run cut short: it keeps the short first segments.
Every other span starts on a segment boundary of the regular grid: the first
frame at or after a multiple of segment_seconds (``boundary``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from stb_origin.transcode.ladder import Ladder, exact_rate, grid

# The decoder starts this long before a span's first frame (from the key frame
# before that), so the frame-rate filter has settled on its grid by then.
SEEK_MARGIN_S = 2


@dataclass(frozen=True)
class Span:
    index: int
    start_unit: int  # first segment boundary of the regular grid (0: the start)
    end_unit: int | None  # None: to the end of the source
    start_frame: int
    end_frame: int | None
    # The number of its first file. The muxer writes one file per GOP (argv.hls_time),
    # numbered as in one run; the trick-play tracks, one file per segment, fit in below
    # the next span's number under the same -start_number.
    first_file: int

    @property
    def last(self) -> bool:
        return self.end_unit is None


def boundary(ladder: Ladder, unit: int) -> int:
    """The frame that starts segment boundary ``unit`` of the regular grid: the first
    frame at or after unit * segment_seconds, as -force_key_frames places it."""
    return math.ceil(unit * unit_frames(ladder))


def unit_frames(ladder: Ladder) -> Fraction:
    """Frames in one segment_seconds, exactly (30000/1001 fps, 4 s: 119.88)."""
    return exact_rate(ladder.fps) * Fraction(ladder.segment_seconds).limit_denominator(1000)


def plan_spans(ladder: Ladder, duration_s: float, span_seconds: float) -> tuple[Span, ...]:
    """Spans of about span_seconds of whole segments; the last takes the rest, so none
    is empty or only a tail. With three spans or more, the last two are cut in half
    (guided self-scheduling): the workers that finish first then wait for half a
    span at most, not a whole one, at the cost of two more ffmpeg starts."""
    units = max(1, round(span_seconds / ladder.segment_seconds))
    count = max(1, math.floor(duration_s / (units * ladder.segment_seconds)))
    starts = [index * units for index in range(count)]
    half = units // 2
    if count >= 3 and half >= 1:
        tail = starts[-2]
        starts[-2:] = [tail, tail + half, tail + units, tail + units + half]
    spans = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        spans.append(Span(
            index=index, start_unit=start, end_unit=end,
            start_frame=boundary(ladder, start),
            end_frame=boundary(ladder, end) if end is not None else None,
            first_file=start * grid(ladder).gops_per_segment,
        ))
    return tuple(spans)


def seek_args(ladder: Ladder, span: Span) -> list[str]:
    """Input options of a span's ffmpeg (before -i): seek near it, keep time stamps."""
    if span.start_unit == 0:
        return []  # from the start, as the one run does
    seek = max(0.0, float(span.start_frame / exact_rate(ladder.fps)) - SEEK_MARGIN_S)
    return ["-ss", f"{seek:.3f}", "-copyts", "-start_at_zero"]


def video_trim(span: Span) -> str:
    """Trim filter on the output-rate video (time base 1/fps: a pts is a frame number)."""
    bounds = []
    if span.start_unit:
        bounds.append(f"start_pts={span.start_frame}")
    if span.end_frame is not None:
        bounds.append(f"end_pts={span.end_frame}")
    return f"trim={':'.join(bounds)}" if bounds else ""


def keyframe_expr(ladder: Ladder, span: Span) -> str:
    """A key frame every GOP from the span's first frame on, by frame number (n counts
    from the span's first frame): the frames the one run forces."""
    g = grid(ladder)
    per_gop = float(exact_rate(ladder.fps) * g.gop)
    first = span.start_unit * g.gops_per_segment
    return f"gte(n+{span.start_frame},ceil(({first}+n_forced)*{per_gop!r}))"
