"""How many bits a title needs: a quick constant-quality probe encode of sampled windows.

Per-title encoding the way Netflix, Bitmovin (per-title) and Mux do it, cheaply:
a few short windows spread over the source, scaled down to a fixed small picture,
encoded by x264 at one constant quality (CRF). What that quality costs in bits
per pixel says how hard the title is: a slide show costs almost nothing, a
football match with film grain costs the most. plan_ladder scales every rung's
cap by the share of REFERENCE_BITS_PER_PIXEL this title needs, never above the cap.

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
PROBE_CRF = 23
# What the probe spends, in bits per pixel, on content that needs the whole caps
# (DEFAULT_RUNGS are sized for sport and grainy film). At or above it a title
# gets the caps; below it, that share of them.
REFERENCE_BITS_PER_PIXEL = 0.06
# Never less than this share of a cap: a slide show still gets clean text and a
# title's quiet first minutes do not starve its busy rest (the probe only samples).
MIN_FACTOR = 0.2


@dataclass(frozen=True)
class Complexity:
    # Of the probe encode: bits over (frames x width x height).
    bits_per_pixel: float
    # The share of each rung's cap the title gets, in [MIN_FACTOR, 1].
    factor: float
    sampled_seconds: float
    probe_width: int
    probe_height: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def analyse(path: Path, source: SourceInfo, settings: Settings) -> Complexity | None:
    """The title's complexity, or None (the caps, as without analysis) when the probe
    encode cannot say: the transcode that follows reports what is wrong with the file."""
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
        proc.run(probe_argv(path, source.video_stream_index, spans, width, height),
                 timeout=settings.probe_timeout_s, on_line=on_line)
    except proc.ProcessFailed as exc:
        log.warning("complexity probe failed; the ladder keeps its caps",
                    extra={"returncode": exc.returncode, "timed_out": exc.timed_out})
        return None
    if frames[0] == 0:
        log.warning("complexity probe made no frames; the ladder keeps its caps")
        return None
    bpp = 8 * total_bytes[0] / (frames[0] * width * height)
    return Complexity(bits_per_pixel=round(bpp, 5), factor=factor(bpp),
                      sampled_seconds=round(frames[0] / PROBE_FPS, 3),
                      probe_width=width, probe_height=height)


def factor(bits_per_pixel: float) -> float:
    return round(min(1.0, max(MIN_FACTOR, bits_per_pixel / REFERENCE_BITS_PER_PIXEL)), 4)


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
               width: int, height: int) -> list[str]:
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
             "-threads", "1", "-map_metadata", "-1",
             # One line per packet, with its size: nothing is written to disk.
             "-f", "framecrc", "-"]
    return argv


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
