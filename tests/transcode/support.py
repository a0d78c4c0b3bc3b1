"""Helpers for the transcode tests: SourceInfo values without ffprobe, shared marks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stb_origin.transcode.probe import AudioTrack, SourceInfo

# make_clip, cached per session by file name (the clip fixture in conftest.py).
Clip = Callable[..., Path]

HD = SourceInfo(
    duration_s=60.0,
    width=1920,
    height=1080,
    fps=30.0,
    variable_frame_rate=False,
    interlaced=False,
    pix_fmt="yuv420p",
    bit_depth=8,
    video_codec="h264",
    video_bitrate=20_000_000,
    rotation=0,
    audio_tracks=(AudioTrack(index=1, codec="aac", channels=2, sample_rate=48_000,
                             language="eng", title=None, default=True),),
    format_name="mov,mp4,m4a,3gp,3g2,mj2",
    size_bytes=150_000_000,
    video_stream_index=0,
)


def source(**changes: Any) -> SourceInfo:
    return dataclasses.replace(HD, **changes)


def track(index: int, **changes: Any) -> AudioTrack:
    """An audio track like HD's, at stream index ``index``."""
    return dataclasses.replace(HD.audio_tracks[0], index=index, **changes)
