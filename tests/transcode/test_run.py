"""Real one-pass transcodes of short clips, checked with ffprobe."""

from __future__ import annotations

import itertools
import json
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, MediaError, SourceInfo, plan_ladder, probe, transcode
from stb_origin.transcode.run import segment_grid, short_reason
from tests.transcode.support import Clip, source

SETTINGS = Settings(x264_preset="ultrafast", x265_preset="ultrafast", segment_seconds=2.0)
TIMEOUT = 60.0


# Reading the output back ------------------------------------------------------------


def _ffprobe(path: Path, *args: str) -> str:
    return proc.run(["ffprobe", "-v", "error", *args, str(path)], timeout=TIMEOUT).stdout


def _playable(rendition_dir: Path, segment: Path, scratch: Path) -> Path:
    """A segment on its own for ffprobe: fMP4 needs its init segment in front."""
    init = rendition_dir / "init.mp4"
    if not init.exists():
        return segment
    joined = scratch / f"{rendition_dir.name}-{segment.stem}.mp4"
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    return joined


def segments(rendition_dir: Path) -> list[Path]:
    return sorted(rendition_dir.glob("seg_*"))


def key_flags(path: Path) -> list[tuple[float, bool]]:
    """(pts, is_key) of each video packet, in presentation order."""
    out = _ffprobe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                   "-of", "csv=p=0")
    packets = []
    for line in out.splitlines():
        if not line.strip():
            continue  # MPEG-TS packets print their side data as an extra line
        pts, flags = line.split(",")[:2]
        packets.append((float(pts), "K" in flags))
    return sorted(packets)


def frames(path: Path) -> list[dict[str, Any]]:
    out = _ffprobe(path, "-select_streams", "v:0", "-show_entries",
                   "frame=key_frame,pict_type", "-of", "json")
    result: list[dict[str, Any]] = json.loads(out)["frames"]
    return result


def streams(path: Path) -> list[dict[str, Any]]:
    out = _ffprobe(path, "-show_entries",
                   "stream=codec_type,codec_name,profile,width,height,pix_fmt,field_order,"
                   "avg_frame_rate,r_frame_rate,channels,sample_aspect_ratio,codec_tag_string",
                   "-of", "json")
    result: list[dict[str, Any]] = json.loads(out)["streams"]
    return result


def whole_stream(rendition_dir: Path, scratch: Path) -> Path:
    """The rendition as one file: its init section, then its segments in playlist order."""
    playlist = (rendition_dir / "index.m3u8").read_text()
    uris = re.findall(r"^(seg_\S+)$", playlist, re.MULTILINE)
    init = rendition_dir / "init.mp4"
    joined = scratch / f"{rendition_dir.name}-whole{Path(uris[0]).suffix}"
    joined.write_bytes((init.read_bytes() if init.exists() else b"")
                       + b"".join((rendition_dir / uri).read_bytes() for uri in uris))
    return joined


def extinf(playlist: Path) -> list[float]:
    return [float(v) for v in re.findall(r"#EXTINF:([0-9.]+),", playlist.read_text())]


def run(source_path: Path, out: Path, settings: Settings = SETTINGS
        ) -> tuple[SourceInfo, Ladder, list[float]]:
    info = probe(source_path, settings)
    ladder = plan_ladder(info, settings)
    progress: list[float] = []
    transcode(source_path, info, ladder, out, settings, on_progress=progress.append)
    return info, ladder, progress


def check_aligned(out: Path, ladder: Ladder, scratch: Path) -> list[list[float]]:
    """Every rendition: same segment count, each segment starting on a key frame at
    the same time as in every other rendition. Returns the start times per rendition."""
    names = [r.name for r in ladder.renditions]
    counts = {name: len(segments(out / name))
              for name in [*names, *(t.name for t in ladder.iframes)]}
    assert len(set(counts.values())) == 1, counts
    starts: list[list[float]] = []
    for name in names:
        rendition_starts = []
        for segment in segments(out / name):
            packets = key_flags(_playable(out / name, segment, scratch))
            assert packets and packets[0][1], f"{name}/{segment.name} does not start on a key frame"
            rendition_starts.append(round(packets[0][0], 3))
        starts.append(rendition_starts)
    assert all(s == starts[0] for s in starts), starts
    return starts


def check_trickplay(out: Path, ladder: Ladder, scratch: Path) -> None:
    """Each tier's I-frame track: one I-frame per segment of the renditions, at the
    tier's size, with the renditions' durations and the same pictures' times."""
    main = out / ladder.renditions[0].name
    assert ladder.iframes
    for tier in ladder.iframes:
        trick = out / tier.name
        assert len(segments(trick)) == len(segments(main))
        for segment in segments(trick):
            decoded = frames(_playable(trick, segment, scratch))
            assert len(decoded) == 1, f"{tier.name}/{segment.name}: {len(decoded)} frames"
            assert decoded[0]["key_frame"] == 1 and decoded[0]["pict_type"] == "I"
        assert extinf(trick / "index.m3u8") == extinf(main / "index.m3u8")
        (video,) = streams(_playable(trick, segments(trick)[0], scratch))
        assert video["codec_type"] == "video"
        assert (video["width"], video["height"]) == (tier.width, tier.height)
    times = [trick_frame_times(out / tier.name, scratch) for tier in ladder.iframes]
    assert all(t == times[0] for t in times), times


def check_renditions(out: Path, ladder: Ladder, scratch: Path, audio: bool) -> None:
    for r in ladder.renditions:
        found = streams(_playable(out / r.name, segments(out / r.name)[0], scratch))
        (v,) = found  # video only: audio is in renditions of its own
        # 8-bit 4:2:0 at most High; ultrafast drops the High tools, so x264 says Baseline.
        # HEVC of an SDR source: 8-bit Main, in an hvc1 sample entry.
        if r.codec == "hevc":
            assert (v["codec_name"], v["pix_fmt"], v["profile"], v["codec_tag_string"]) == (
                "hevc", "yuv420p", "Main", "hvc1")
        else:
            assert (v["codec_name"], v["pix_fmt"]) == ("h264", "yuv420p")
            assert v["profile"] in ("High", "Main", "Constrained Baseline")
        assert (v["width"], v["height"]) == (r.width, r.height)
        assert v.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
    assert [a.name for a in ladder.audio] == (["audio0_aac"] if audio else [])
    for a in ladder.audio:
        assert len(segments(out / a.name)) == len(segments(out / ladder.renditions[0].name))
        (found,) = streams(_playable(out / a.name, segments(out / a.name)[0], scratch))
        assert (found["codec_type"], found["codec_name"]) == ("audio", "aac")
        assert found["channels"] == a.channels


# The tests -----------------------------------------------------------------------------


def test_one_pass_ladder_fmp4(clip: Clip, tmp_path: Path) -> None:
    source = clip("hd.mp4", seconds=5, size="1280x720")
    out = tmp_path / "out"
    (out / "720p").mkdir(parents=True)
    (out / "720p" / "seg_00099.m4s").write_bytes(b"left over from an earlier attempt")
    _, ladder, progress = run(source, out)

    # The default policy: HEVC from 720 lines up, on the same key-frame grid.
    assert [r.name for r in ladder.renditions] == [
        "720p", "540p", "432p", "360p", "234p", "720p-hevc"]
    tricks = ["iframes_720p", "iframes_432p", "iframes_234p"]
    assert [t.name for t in ladder.iframes] == tricks
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [r.name for r in ladder.renditions] + ["audio0_aac", *tricks])
    for name in [*[r.name for r in ladder.renditions], "audio0_aac", *tricks]:
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["index.m3u8", "init.mp4", "seg_00000.m4s", "seg_00001.m4s",
                         "seg_00002.m4s"], (name, files)
        text = (out / name / "index.m3u8").read_text()
        assert '#EXT-X-MAP:URI="init.mp4"' in text
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text
        # ffmpeg says so only of video it cut on key frames (the packager writes its own).
        assert ("#EXT-X-INDEPENDENT-SEGMENTS" in text) == (name != "audio0_aac")

    starts = check_aligned(out, ladder, tmp_path)
    assert [s - starts[0][0] for s in starts[0]] == pytest.approx([0.0, 2.0, 4.0], abs=0.01)
    assert extinf(out / "720p" / "index.m3u8") == pytest.approx([2.0, 2.0, 1.0], abs=0.05)
    check_trickplay(out, ladder, tmp_path)
    check_renditions(out, ladder, tmp_path, audio=True)

    assert progress, "no progress reported"
    assert progress == sorted(progress)
    assert progress[-1] == pytest.approx(1.0, abs=0.02)
    assert all(0.0 <= p <= 1.0 for p in progress)


def test_ts_segments(clip: Clip, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, ladder, _ = run(clip("good.mp4", seconds=4), out, SETTINGS.with_(segment_format="ts"))
    for name in ["360p", "234p", "iframes_234p"]:
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["index.m3u8", "seg_00000.ts", "seg_00001.ts"], (name, files)
        assert "EXT-X-MAP" not in (out / name / "index.m3u8").read_text()
    check_aligned(out, ladder, tmp_path)
    check_trickplay(out, ladder, tmp_path)


@pytest.mark.parametrize("name,fps,seconds", [
    ("ntsc.mp4", "30000/1001", 5.2),
    # The video ends 4 ms after a segment boundary with no frame starting there:
    # the trick-play track's fps filter emits one frame more, which run.py drops.
    ("film.mp4", "24000/1001", 4.0),
])
def test_fractional_frame_rates_stay_aligned(clip: Clip, tmp_path: Path, name: str, fps: str,
                                             seconds: float) -> None:
    out = tmp_path / "out"
    _, ladder, _ = run(clip(name, seconds=seconds, fps=fps, size="416x234"), out)
    assert ladder.fps == pytest.approx(float(Fraction(fps)))
    check_aligned(out, ladder, tmp_path)
    check_trickplay(out, ladder, tmp_path)


def trick_frame_times(trick: Path, scratch: Path) -> list[float]:
    return [round(key_flags(_playable(trick, segment, scratch))[0][0], 3)
            for segment in segments(trick)]


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
def test_short_first_segments_then_the_regular_grid(clip: Clip, tmp_path: Path,
                                                    segment_format: str) -> None:
    # 4 s segments: the first 4 s become two of 2 s, so a player starts on a short one.
    out = tmp_path / "out"
    settings = SETTINGS.with_(segment_seconds=4.0, segment_format=segment_format)
    _, ladder, _ = run(clip("ten.mp4", seconds=10, size="640x360"), out, settings)
    assert ladder.first_segments == 2
    starts = check_aligned(out, ladder, tmp_path)
    assert [s - starts[0][0] for s in starts[0]] == pytest.approx([0.0, 2.0, 4.0, 8.0],
                                                                  abs=0.01)
    for r in ladder.renditions:
        assert extinf(out / r.name / "index.m3u8") == pytest.approx([2.0, 2.0, 4.0, 2.0],
                                                                    abs=0.05)
    check_trickplay(out, ladder, tmp_path)
    # Each trick-play frame is the picture at its segment's start, not a duplicate.
    assert trick_frame_times(out / "iframes_234p", tmp_path) == pytest.approx(starts[0],
                                                                              abs=0.01)


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
def test_a_key_frame_every_two_seconds_and_segments_of_whole_gops(
        clip: Clip, tmp_path: Path, segment_format: str) -> None:
    # 4 s segments (two 2 s ones first) at 29.97 fps: key frames every 2 s inside
    # segments, and the segments still on the grid.
    out = tmp_path / "out"
    settings = SETTINGS.with_(segment_seconds=4.0, segment_format=segment_format)
    _, ladder, _ = run(clip("ntsc13-360.mp4", seconds=13.0, fps="30000/1001", size="640x360"),
                       out, settings)
    fps = Fraction(30000, 1001)
    total = math.ceil(13 * fps)
    # The first frame at or after each multiple of 2 s; segment boundaries at 2, 4, 8, 12 s.
    keys = [k for k in (math.ceil(n * 2 * fps) for n in range(10)) if k < total]
    bounds = [math.ceil(t * fps) for t in (0, 2, 4, 8, 12)] + [total]
    assert len(ladder.renditions) == 2
    for r in ladder.renditions:
        decoded = frames(whole_stream(out / r.name, tmp_path))
        assert len(decoded) == total, r.name
        assert [i for i, f in enumerate(decoded) if f["key_frame"] == 1] == keys, r.name
        assert {decoded[i]["pict_type"] for i in keys} == {"I"}
        assert extinf(out / r.name / "index.m3u8") == pytest.approx(
            [float((b - a) / fps) for a, b in itertools.pairwise(bounds)], abs=0.001)
    # Each segment of each rendition begins with a key frame, at the same time in all.
    starts = check_aligned(out, ladder, tmp_path)
    assert [s - starts[0][0] for s in starts[0]] == pytest.approx(
        [float(b / fps) for b in bounds[:-1]], abs=0.002)
    check_trickplay(out, ladder, tmp_path)
    for a in ladder.audio:
        assert len(segments(out / a.name)) == len(bounds) - 1


@pytest.mark.parametrize("name,fps,seconds", [
    ("ntsc13.mp4", "30000/1001", 13.0),
    ("film13.mp4", "24000/1001", 12.02),
])
def test_short_first_segments_at_fractional_rates(clip: Clip, tmp_path: Path, name: str,
                                                  fps: str, seconds: float) -> None:
    # 6 s segments: three of 2 s first. Key frames and trick-play frames must still
    # land on the same frames when no frame starts exactly on a boundary.
    out = tmp_path / "out"
    _, ladder, _ = run(clip(name, seconds=seconds, fps=fps, size="416x234"), out,
                       SETTINGS.with_(segment_seconds=6.0))
    assert ladder.first_segments == 3
    starts = check_aligned(out, ladder, tmp_path)
    assert [s - starts[0][0] for s in starts[0]][:5] == pytest.approx(
        [0.0, 2.0, 4.0, 6.0, 12.0], abs=0.05)
    check_trickplay(out, ladder, tmp_path)
    # The fps filter stamps a trick-play frame with the boundary time itself, which
    # may be up to one frame before the first frame at or after it (as with no
    # short segments): the right picture, never one from another segment.
    assert trick_frame_times(out / ladder.iframes[-1].name, tmp_path) == pytest.approx(
        starts[0], abs=1 / ladder.fps + 0.002)


ODD_SOURCES: dict[str, dict[str, Any]] = {
    "rotated.mp4": {"rotate": 90},
    "10bit.mp4": {"pix_fmt": "yuv420p10le"},
    "422.mkv": {"pix_fmt": "yuv422p"},
    "interlaced.ts": {"interlaced": True, "fps": 25},
    "vfr.mp4": {"vfr": True},
    "subs.mp4": {"subtitles": True},
    "silent.mp4": {"audio": False},
    "odd.mp4": {"size": "641x359"},
    "anamorphic.mp4": {"size": "720x576", "fps": 25, "extra_output_args": ["-aspect", "16:9"]},
    "mono44k.mov": {"audio_channels": 1, "audio_sample_rate": 44_100},
}


def test_a_video_starting_after_its_audio_keeps_every_trickplay_frame(
        clip: Clip, tmp_path: Path) -> None:
    # Matroska with AAC: the video starts 23 ms after the audio. With short first
    # segments the trick-play track lost its first frame to that: one segment
    # short, and the upload failed with transcode_failed.
    source = clip("late-video.mkv", seconds=5)
    assert float(_ffprobe(source, "-select_streams", "v:0", "-show_entries",
                          "stream=start_time", "-of", "csv=p=0")) > 0
    out = tmp_path / "out"
    _info, ladder, _ = run(source, out, SETTINGS.with_(segment_seconds=4.0))
    assert ladder.first_segments > 1
    check_aligned(out, ladder, tmp_path)
    check_trickplay(out, ladder, tmp_path)


@pytest.mark.parametrize("name", ODD_SOURCES)
def test_odd_sources_make_a_correct_ladder(clip: Clip, tmp_path: Path, name: str) -> None:
    kwargs = ODD_SOURCES[name]
    source = clip(name, **{"seconds": 3, **kwargs})
    out = tmp_path / "out"
    info, ladder, _ = run(source, out)
    check_aligned(out, ladder, tmp_path)
    check_trickplay(out, ladder, tmp_path)
    check_renditions(out, ladder, tmp_path, audio=kwargs.get("audio", True))

    top = ladder.renditions[0]
    first = _playable(out / top.name, segments(out / top.name)[0], tmp_path)
    (video,) = [s for s in streams(first) if s["codec_type"] == "video"]
    if name == "rotated.mp4":
        assert (top.width, top.height) == (360, 640)
    if name == "odd.mp4":
        assert (top.width, top.height) == (640, 358)
    if name == "anamorphic.mp4":
        assert (top.name, top.width, top.height) == ("540p", 960, 540)
    if name == "interlaced.ts":
        assert info.interlaced
        assert video.get("field_order", "progressive") == "progressive"
    if name == "vfr.mp4":
        assert info.variable_frame_rate
        assert video["avg_frame_rate"] == video["r_frame_rate"] == "24/1"
    if name == "mono44k.mov":
        # Mono stays mono, 44.1 kHz stays 44.1 kHz.
        (audio,) = ladder.audio
        assert (audio.channels, audio.sample_rate) == (1, 44_100)


def test_ffmpeg_failure_becomes_a_media_error(clip: Clip, tmp_path: Path) -> None:
    settings = SETTINGS.with_(x264_preset="no-such-preset")
    source = clip("good.mp4", seconds=4)
    info = probe(source, settings)
    with pytest.raises(MediaError) as caught:
        transcode(source, info, plan_ladder(info, settings), tmp_path / "out", settings)
    assert caught.value.code == "transcode_failed"
    assert "preset" in caught.value.message


def test_time_out(clip: Clip, tmp_path: Path) -> None:
    source = clip("hd.mp4", seconds=5, size="1280x720")
    settings = SETTINGS.with_(transcode_timeout_s=0.05)
    info = probe(source, settings)
    with pytest.raises(MediaError) as caught:
        transcode(source, info, plan_ladder(info, settings), tmp_path / "out", settings)
    assert caught.value.code == "transcode_timeout"


def test_missing_ffmpeg_says_what_to_install(clip: Clip, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    source = clip("good.mp4", seconds=4)
    info = probe(source, SETTINGS)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(proc.ToolMissing, match="apt-get install -y ffmpeg"):
        transcode(source, info, plan_ladder(info, SETTINGS), tmp_path / "out", SETTINGS)


def test_short_reason_strips_the_codec_prefix() -> None:
    tail = ("[h264 @ 0x55d0c0a1b2c0] error while decoding MB 3 4\n"
            "[libx264 @ 0x55d0c0a1b2c0] Error setting preset/tune bad/(null).\n"
            "Conversion failed!\n")
    assert short_reason(tail) == "libx264: Error setting preset/tune bad/(null)."
    assert short_reason("") == "ffmpeg could not transcode the source"
    assert len(short_reason("x" * 1000)) == 300


@pytest.mark.parametrize("segment_s, duration, grid", [
    (4.0, 7.0, [2.0, 2.0, 3.0]),
    (4.0, 12.0, [2.0, 2.0, 4.0, 4.0]),
    # A tail too short to be a segment joins the one before.
    (4.0, 8.1, [2.0, 2.0, 4.1]),
    (2.0, 5.0, [2.0, 2.0, 1.0]),
    (6.0, 1.5, [1.5]),
])
def test_audio_only_segment_grid_is_the_videos(segment_s: float, duration: float,
                                                grid: list[float]) -> None:
    src = source(width=0, height=0, fps=0.0, video_stream_index=None, video_bitrate=None)
    ladder = plan_ladder(src, SETTINGS.with_(segment_seconds=segment_s))
    assert segment_grid(ladder, duration) == pytest.approx(grid)
