"""A strip of thumbnails for an asset: one JPEG sprite sheet, tiles in one row, for
the console's asset page (and any player's scrub bar).

Made from the smallest I-frame track of the encoded output: already SDR (an HDR
master's trick play is tone-mapped), already one keyframe per segment and small,
so the strip decodes about one small frame per segment and nothing else. Every
``step``-th frame becomes a tile, so that a long film still gives at most
``MAX_TILES`` tiles.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from stb_origin import proc
from stb_origin.packager.package import read_track

TILE_WIDTH = 160
MAX_TILES = 60
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Strip:
    count: int  # tiles, left to right
    interval_s: float  # media time between two tiles, from 0
    width: int  # of one tile
    height: int

    def to_json(self, url: str) -> dict[str, object]:
        return {"url": url, "count": self.count, "interval_s": self.interval_s,
                "width": self.width, "height": self.height}


def make_strip(track_dir: Path, frame_width: int, frame_height: int, out: Path) -> Strip:
    """Write the strip of the I-frame track in ``track_dir`` to ``out``."""
    track = read_track(track_dir)
    frames = len(track.segments)
    step = math.ceil(frames / MAX_TILES)
    count = math.ceil(frames / step)
    height = 2 * round(TILE_WIDTH * frame_height / frame_width / 2)
    # The init section and the segments, end to end, are one plain file (fMP4 or TS):
    # ffmpeg then reads a container, never a playlist that could name other files.
    joined = out.with_name(out.name + ".track")
    with joined.open("wb") as dst:
        for part in ([track.init] if track.init else []) + list(track.segments):
            with part.open("rb") as src:
                shutil.copyfileobj(src, dst)
    try:
        proc.run([
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-protocol_whitelist", "file", "-format_whitelist", "mov,mpegts",
            "-i", "file:" + str(joined.absolute()),
            "-vf", (f"select='not(mod(n\\,{step}))',scale={TILE_WIDTH}:{height},"
                    f"setsar=1,tile={count}x1"),
            "-fps_mode", "passthrough", "-frames:v", "1", "-q:v", "5",
            "file:" + str(out.absolute()),
        ], timeout=TIMEOUT_S)
    finally:
        joined.unlink(missing_ok=True)
    interval = sum(track.durations) / frames * step
    return Strip(count, round(interval, 3), TILE_WIDTH, height)
