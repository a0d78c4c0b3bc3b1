"""The strip of thumbnails: one tile per step of the I-frame track, in order, at most
MAX_TILES however long the asset."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stb_origin.packager.package import PackagingError
from stb_origin.packager.thumbnails import MAX_TILES, TILE_WIDTH, make_strip


def _track(dest: Path, frames: int, step: float, segment_format: str = "fmp4") -> Path:
    """A trick-play-like track: one frame a second, one frame a segment, frame n
    with luma 16 + step * n (a tile's brightness says which frame it shows)."""
    dest.mkdir()
    suffix = "m4s" if segment_format == "fmp4" else "ts"
    subprocess.run([
        "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
        "-i", f"nullsrc=s=320x180:r=1:d={frames},format=yuv420p,"
        f"geq=lum='16+{step}*N':cb=128:cr=128",
        "-c:v", "libx264", "-g", "1", "-pix_fmt", "yuv420p", "-f", "hls",
        "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", segment_format,
        "-hls_segment_filename", str(dest / f"seg_%05d.{suffix}"), str(dest / "index.m3u8"),
    ], check=True)
    return dest


def _tile_grays(sprite: Path, width: int, height: int, count: int) -> list[float]:
    """Each tile's mean brightness, full range (video luma 16 + x reads as x * 255/219)."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(sprite),
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    assert len(raw) == width * count * height
    grays = []
    for tile in range(count):
        pixels = [raw[row * width * count + tile * width + col]
                  for row in range(height) for col in range(width)]
        grays.append(sum(pixels) / len(pixels))
    return grays


@pytest.mark.parametrize("segment_format", ["fmp4", "mpegts"])
def test_a_short_track_gets_a_tile_per_frame_in_order(tmp_path, segment_format):
    track = _track(tmp_path / "iframes", 12, 10, segment_format)
    strip = make_strip(track, 320, 180, tmp_path / "thumbs.jpg")
    assert (strip.count, strip.interval_s, strip.width, strip.height) == (12, 1.0, TILE_WIDTH, 90)
    grays = _tile_grays(tmp_path / "thumbs.jpg", strip.width, strip.height, strip.count)
    for n, gray in enumerate(grays):
        assert abs(gray - 10 * n * 255 / 219) < 3, (n, grays)
    assert not list(tmp_path.glob("*.track")), "the joined track is removed"


def test_a_long_track_is_sampled_down_to_at_most_max_tiles(tmp_path):
    track = _track(tmp_path / "iframes", 2 * MAX_TILES + 10, 1.5)
    strip = make_strip(track, 320, 180, tmp_path / "thumbs.jpg")
    # 130 frames, every third: 44 tiles, 3 s apart, tile i showing frame 3i.
    assert (strip.count, strip.interval_s) == (44, 3.0)
    grays = _tile_grays(tmp_path / "thumbs.jpg", strip.width, strip.height, strip.count)
    for i, gray in enumerate(grays):
        assert abs(gray - 1.5 * 3 * i * 255 / 219) < 2.5, (i, grays)


def test_a_playlist_naming_a_file_outside_its_folder_is_refused(tmp_path):
    track = _track(tmp_path / "iframes", 3, 10)
    playlist = track / "index.m3u8"
    playlist.write_text(playlist.read_text().replace("seg_00001.m4s", "../../etc/passwd"))
    with pytest.raises(PackagingError, match="not a file beside it"):
        make_strip(track, 320, 180, tmp_path / "thumbs.jpg")
    assert not (tmp_path / "thumbs.jpg").exists()
