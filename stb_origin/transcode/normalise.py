"""Loudness pass one: measure every audio rendition of a plan in one audio-only run.

One ffmpeg demuxes the inputs once and decodes only the audio tracks (video is
not decoded), each rendition measured after its own downmix. What it measured
goes into the plan; pass two is part of the ladder encode (argv.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode.audio import AudioRendition
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.inputs import input_args
from stb_origin.transcode.ladder import Ladder
from stb_origin.transcode.loudness import measure_filter, parse_reports

# Lines of stderr one loudnorm report takes, with room for ffmpeg's closing lines.
REPORT_LINES = 16


def normalised(inputs: Sequence[Path], ladder: Ladder, settings: Settings) -> Ladder:
    """The ladder with each audio rendition's measured loudness (None for silence)."""
    if not ladder.audio:
        return ladder
    try:
        done = proc.run(measure_argv(inputs, ladder.audio), timeout=settings.transcode_timeout_s,
                        stderr_lines=REPORT_LINES * (len(ladder.audio) + 2))
    except proc.ProcessFailed as exc:
        if exc.timed_out:
            raise MediaError("transcode_timeout", "measuring the loudness took longer than"
                             f" {settings.transcode_timeout_s:g} s") from None
        raise MediaError("transcode_failed", "the audio cannot be decoded") from None
    reports = parse_reports(done.stderr_tail)
    missing = [a.name for a in ladder.audio if a.name not in reports]
    if missing:
        raise RuntimeError(f"ffmpeg reported no loudness for {missing}")
    return dataclasses.replace(ladder, audio=tuple(
        dataclasses.replace(a, loudness=reports[a.name]) for a in ladder.audio))


def measure_argv(inputs: Sequence[Path], audio: Sequence[AudioRendition]) -> list[str]:
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]
    for path in inputs:
        argv += input_args(path)
    chains = [f"[{a.stream}]{a.downmix},{measure_filter(a.name, a.channels)}[{a.name}]"
              for a in audio]
    argv += ["-filter_complex", ";".join(chains)]
    for a in audio:
        argv += ["-map", f"[{a.name}]"]
    # Nothing is written: the reports in the log are the result.
    return [*argv, "-c:a", "pcm_f32le", "-f", "null", "-"]
