"""The one ffmpeg of a channel: decode once, encode every rung, cut segments on a grid.

Every rung is an output of the same ffmpeg with its own ``segment`` muxer, and
every rung's encoder is forced to a key frame at each multiple of the segment
duration, so segment N of every rung starts on the same frame: a player can
switch between them at any segment. Each muxer appends a line to its rung's CSV
list (``name,start,end``) when a segment is complete, and only then: a segment
still being written is never listed, and one cut short by a kill never appears.

Passthrough repackages the source's first video and audio as they are (one
rendition, cut at the source's key frames). The slate is a lavfi picture and
silence, encoded like a source, for when every source is gone.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stb_origin.transcode.ladder import DEFAULT_RUNGS

SEGMENT_PATTERN = "%d.ts"
LIST_NAME = "segments.csv"
AUDIO_BITRATE = 128_000
# Of the slate, a still picture: 5 frames a second look like 25 and cost a fifth, so a
# runner whose channels all fall to their slates at once (a feed provider's outage)
# still keeps every one of them in real time. Sources keep their own frame rate.
SLATE_FRAME_RATE = 5
PASSTHROUGH_RENDITION = "source"
# The rung heights a channel's ladder may name: the VOD ladder's, whose bit rates
# ``rungs_for`` takes (2160p is no live rung: no core encodes it in real time).
HEIGHTS = tuple(r.height for r in DEFAULT_RUNGS)
# How long ffmpeg looks at a live input before it starts: a second, unless the feed
# needs longer (ffmpeg reads an MPEG-TS input for the whole window, so its 5 s
# default would hold every start back, then burst the backlog).
ANALYZE_S = 1.0


def live_input(analyze_s: float = ANALYZE_S) -> list[str]:
    """ffmpeg's options before a live input: find its streams within ``analyze_s``
    (a picture's size comes with a key frame: the window must hold one), and drop
    what is corrupt rather than stop on it."""
    # A megabyte a second: what an 8 Mb/s feed sends.
    window = str(int(analyze_s * 1_000_000))
    return ["-fflags", "+discardcorrupt", "-analyzeduration", window, "-probesize", window]


@dataclass(frozen=True)
class LiveRung:
    name: str
    height: int
    video_bitrate: int  # the target; maxrate and buffer follow from it


def rungs_for(ladder: Sequence[int], source_height: int | None = None) -> list[LiveRung]:
    """The rungs of a channel's ladder: heights from its configuration, with the bit
    rates of the VOD ladder's rung of that height (or the nearest below); with
    ``source_height``, no rung taller than the source."""
    rungs = []
    for height in ladder:
        if source_height is not None and height > source_height:
            continue
        model = next((r for r in DEFAULT_RUNGS if r.height <= height), DEFAULT_RUNGS[-1])
        bitrate = max(model.bitrate * height // model.height, 100_000)
        rungs.append(LiveRung(f"{height}p", height, bitrate))
    return rungs


def auto_ladder(source_height: int) -> list[int]:
    """Up to three standard heights at or below the source's (at least one rung)."""
    heights = [r.height for r in DEFAULT_RUNGS if r.height <= source_height * 1.1]
    return heights[:3] or [DEFAULT_RUNGS[-1].height]


def encode_argv(ffmpeg: str, input_args: Sequence[str], rungs: Sequence[LiveRung],
                segment_s: float, work: Path, preset: str,
                analyze_s: float = ANALYZE_S) -> list[str]:
    """ffmpeg reading one input (``input_args`` ends with ``-i URL``) into every rung's
    folder under ``work``, each with its segment list."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning",
            *live_input(analyze_s), *input_args]
    labels = [f"v{i}" for i in range(len(rungs))]
    split = f"[0:v:0]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs)))
    scales = [f"[s{i}]scale=-2:{rung.height},setsar=1[{labels[i]}]"
              for i, rung in enumerate(rungs)]
    argv += ["-filter_complex", ";".join([split, *scales])]
    # A key frame at every multiple of the segment duration, in every rung, and
    # nowhere else that would cut a segment short.
    keyframes = f"expr:gte(t,n_forced*{segment_s:g})"
    for i, rung in enumerate(rungs):
        argv += ["-map", f"[{labels[i]}]", "-map", "0:a:0?",
                 "-c:v", "libx264", "-preset", preset, "-profile:v", "high",
                 "-pix_fmt", "yuv420p", "-b:v", str(rung.video_bitrate),
                 "-maxrate", str(rung.video_bitrate * 5 // 4),
                 "-bufsize", str(rung.video_bitrate * 2),
                 "-force_key_frames", keyframes, "-sc_threshold", "0",
                 "-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ac", "2",
                 *_segmenter(work / rung.name, segment_s)]
    return argv


def passthrough_argv(ffmpeg: str, input_args: Sequence[str], segment_s: float,
                     work: Path, analyze_s: float = ANALYZE_S) -> list[str]:
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning",
            *live_input(analyze_s), *input_args, "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
            *_segmenter(work / PASSTHROUGH_RENDITION, segment_s)]


def slate_input(width: int = 1280, height: int = 720) -> list[str]:
    """A dark picture and silence, in real time, for ``encode_argv``."""
    return ["-re", "-f", "lavfi", "-i", f"color=c=0x101828:s={width}x{height}:r={SLATE_FRAME_RATE}",
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]


def slate_argv(ffmpeg: str, rungs: Sequence[LiveRung], segment_s: float, work: Path,
               preset: str) -> list[str]:
    argv = encode_argv(ffmpeg, slate_input(), rungs, segment_s, work, preset)
    # The slate's sound is its second input.
    return [("1:a:0?" if arg == "0:a:0?" else arg) for arg in argv]


def _segmenter(folder: Path, segment_s: float) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return ["-f", "segment", "-segment_time", f"{segment_s:g}", "-segment_format", "mpegts",
            "-segment_list", str(folder / LIST_NAME), "-segment_list_type", "csv",
            "-reset_timestamps", "0", str(folder / SEGMENT_PATTERN)]


@dataclass(frozen=True)
class Done:
    """One complete segment of one rung, as its list says."""

    index: int  # ffmpeg's segment number in this run, from 0
    path: Path
    start: float  # seconds on the run's own clock
    end: float


class SegmentList:
    """A rung's list as ffmpeg appends to it (one CSV line per complete segment): each
    read goes on from where the last one ended, so a channel on air for days does not
    reread all its lines five times a second."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._offset = 0  # bytes of whole lines read so far
        self._entries: list[Done] = []  # read, not yet skipped
        self._read = 0  # how many lines have been read

    def after(self, skip: int) -> list[Done]:
        """The complete segments after the first ``skip`` (ffmpeg's numbers)."""
        try:
            with open(self._folder / LIST_NAME, "rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            data = b""
        # The last line may be half-written: it counts once it ends with a newline.
        whole = data[:data.rfind(b"\n") + 1]
        self._offset += len(whole)
        for name, start, end in csv.reader(whole.decode().splitlines()):
            self._entries.append(Done(self._read, self._folder / name, float(start),
                                      float(end)))
            self._read += 1
        self._entries = [done for done in self._entries if done.index >= skip]
        return list(self._entries)
