"""How many bits a title needs: a quick constant-quality probe encode of sampled windows.

Per-title encoding the way Netflix, Bitmovin and Mux do it, cheaply: a few
short windows spread over the source, scaled down to about 320x180, encoded by
x264 at one constant quality (CRF) with the ladder's key frame interval. What
that quality costs in bits per pixel says how hard the title is: a slide show
costs almost nothing, a football match under film grain the most. rung_bitrate
turns it into each rung's bit rate, the cap (DEFAULT_RUNGS) at most.

The probe is deterministic: fixed windows, size, rate, preset, CRF and one
encoder thread (x264's output depends on its thread count).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode.inputs import input_args
from stb_origin.transcode.probe import SourceInfo

log = logging.getLogger("stb_origin.transcode.complexity")

WINDOWS = 5
WINDOW_SECONDS = 2.0
# About 320x180 whatever the shape: bits per pixel only compare at one picture area.
PROBE_PIXELS = 320 * 180
PROBE_FPS = 30
PROBE_PRESET = "veryfast"
# The quality every title is given: about what the caps give typical content.
PROBE_CRF = 16
# A picture with k times the pixels needs about k ** 0.75 times the bits for the
# same quality (detail grows slower than area).
PIXEL_EXPONENT = 0.75
# Never less than this share of a cap: a title's quiet sampled minutes must not
# starve its busy rest (the probe only samples).
MIN_SHARE = 0.2


@dataclass(frozen=True)
class Complexity:
    # Of the probe encode: bits over (frames x width x height).
    bits_per_pixel: float
    sampled_seconds: float
    probe_width: int
    probe_height: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def analyse(path: Path, source: SourceInfo, settings: Settings) -> Complexity | None:
    """The title's complexity, or None (the caps, as without analysis) when the probe
    encode cannot say: the transcode that follows reports what is wrong with the file."""
    stream = source.video_stream_index
    if stream is None:
        return None  # an audio-only master: no picture, no ladder to size
    width, height = probe_size(source.width, source.height)
    spans = windows(source.duration_s)
    frames, total_bytes = [0], [0]

    def on_line(line: str) -> None:
        # framecrc: "stream, dts, pts, duration, size, checksum"; "#" lines are headers.
        fields = line.split(",")
        if len(fields) >= 5 and not line.startswith("#"):
            frames[0] += 1
            total_bytes[0] += int(fields[4])

    try:
        argv = probe_argv(path, stream, spans, width, height,
                          settings.segment_seconds)
        proc.run(argv, timeout=settings.probe_timeout_s, on_line=on_line)
    except proc.ProcessFailed as exc:
        log.warning("complexity probe failed; the ladder keeps its caps",
                    extra={"returncode": exc.returncode, "timed_out": exc.timed_out})
        return None
    if frames[0] == 0:
        log.warning("complexity probe made no frames; the ladder keeps its caps")
        return None
    bpp = 8 * total_bytes[0] / (frames[0] * width * height)
    return Complexity(bits_per_pixel=round(bpp, 5),
                      sampled_seconds=round(frames[0] / PROBE_FPS, 3),
                      probe_width=width, probe_height=height)


def rung_bitrate(complexity: Complexity, width: int, height: int, fps: float, cap: int) -> int:
    """What a width x height rung needs for the probe's quality, within [MIN_SHARE, 1] of cap."""
    probe_pixels = complexity.probe_width * complexity.probe_height
    frame_bits = complexity.bits_per_pixel * probe_pixels * (
        width * height / probe_pixels) ** PIXEL_EXPONENT
    return int(min(cap, max(MIN_SHARE * cap, frame_bits * fps)))


def windows(duration_s: float) -> list[tuple[float, float]]:
    """(start, length) of each sampled window: evenly spread, the whole of a short source."""
    if duration_s <= WINDOWS * WINDOW_SECONDS:
        return [(0.0, duration_s)]
    step = (duration_s - WINDOW_SECONDS) / WINDOWS
    # Each window in the middle of its share, so neither the opening nor the credits dominate.
    return [(round(step * (i + 0.5), 3), WINDOW_SECONDS) for i in range(WINDOWS)]


def probe_size(width: int, height: int) -> tuple[int, int]:
    """The source's shape at about PROBE_PIXELS, never upscaled, even sides."""
    scale = min(1.0, math.sqrt(PROBE_PIXELS / (width * height)))
    return _even(width * scale), _even(height * scale)


def probe_argv(path: Path, stream_index: int, spans: list[tuple[float, float]],
               width: int, height: int, segment_seconds: float) -> list[str]:
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    for start, length in spans:
        # Before its input, -ss seeks (to the key frame before, then decodes up to start).
        argv += ["-ss", f"{start:.3f}", "-t", f"{length:.3f}", *input_args(path)]
    picture = f"fps={PROBE_FPS},scale={width}:{height},format=yuv420p,setsar=1"
    chains = [f"[{i}:{stream_index}]{picture}[w{i}]" for i in range(len(spans))]
    joined = "".join(f"[w{i}]" for i in range(len(spans)))
    chains.append(f"{joined}concat=n={len(spans)}:v=1:a=0[probe]")
    argv += ["-filter_complex", ";".join(chains), "-map", "[probe]",
             "-c:v", "libx264", "-preset", PROBE_PRESET, "-crf", str(PROBE_CRF),
             # Key frames as often as the ladder's: on static pictures they are most of the bits.
             "-g", str(max(1, round(segment_seconds * PROBE_FPS))), "-sc_threshold", "0",
             "-threads", "1", "-map_metadata", "-1",
             # One line per packet, with its size: nothing is written to disk.
             "-f", "framecrc", "-"]
    return argv


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
