from __future__ import annotations

from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.packager.codecs import CodecError, Codecs, avc1, hvc1, mp4_codecs, read_codecs
from tests.packager import support


@pytest.mark.parametrize(("profile", "level", "expected"), [
    # x264 marks Baseline as Constrained (constraint_set0+1) and Main with constraint_set1.
    ("baseline", "3.0", "avc1.42c01e"),
    ("main", "3.0", "avc1.4d401e"),
    ("high", "3.1", "avc1.64001f"),
    ("high", "4.0", "avc1.640028"),
])
def test_h264_from_init_and_from_ts(tmp_path: Path, profile: str, level: str,
                                    expected: str) -> None:
    init, ts = support.encode_clip(tmp_path / "clip", profile, level)
    assert read_codecs(init) == Codecs(expected, "mp4a.40.2")
    assert read_codecs(ts) == Codecs(expected, "mp4a.40.2")
    assert str(read_codecs(init)) == f"{expected},mp4a.40.2"


def test_audio_object_type_is_read_not_assumed(tmp_path: Path) -> None:
    # AAC Main (object type 1): the esds AudioSpecificConfig says so.
    init, _ = support.encode_clip(tmp_path / "clip", "high", None, aac_profile="aac_main")
    assert read_codecs(init).audio == "mp4a.40.1"


def test_video_only(tmp_path: Path) -> None:
    init, ts = support.encode_clip(tmp_path / "clip", "main", "3.0", audio=False)
    assert read_codecs(init) == Codecs("avc1.4d401e")
    assert read_codecs(ts) == Codecs("avc1.4d401e")
    assert str(read_codecs(ts)) == "avc1.4d401e"


def test_work_dir_tracks(fmp4_work: Path, ts_work: Path) -> None:
    # ultrafast x264 is Constrained Baseline; the level follows the frame size.
    assert str(read_codecs(fmp4_work / "360p" / "init_360p.mp4")) == "avc1.42c01e,mp4a.40.2"
    assert str(read_codecs(ts_work / "360p" / "seg_00000.ts")) == "avc1.42c01e,mp4a.40.2"
    assert str(read_codecs(fmp4_work / "iframes_180p" / "init.mp4")).startswith("avc1.42c0")


@pytest.mark.parametrize(("pix_fmt", "profile", "expected"), [
    # Main (1) is also Main 10 compatible (flags 1 and 2: "6"); Main 10 (2) only
    # itself ("4"). Level 1 (30) fits 160x90 at 25 fps; x265 sets progressive
    # and frame-only source (0x90).
    ("yuv420p", "Main", "hvc1.1.6.L30.90"),
    ("yuv420p10le", "Main 10", "hvc1.2.4.L30.90"),
])
def test_hevc_from_the_hvcc_box(tmp_path: Path, pix_fmt: str, profile: str,
                                expected: str) -> None:
    init = support.encode_hevc_init(tmp_path / "clip", pix_fmt)
    assert read_codecs(init) == Codecs(expected)
    done = proc.run(["ffprobe", "-v", "error", "-show_entries",
                     "stream=profile,codec_tag_string", "-of", "csv=p=0",
                     str(init.parent / "index.m3u8")], timeout=support.TIMEOUT)
    # The playlist's program repeats the stream: the first line is enough.
    assert done.stdout.splitlines()[0] == f"{profile},hvc1"


def test_hvc1_formatting() -> None:
    # The examples of ISO/IEC 14496-15 E.3 and Apple's HLS authoring spec.
    assert hvc1(0, 1, 1, 0x60000000, bytes([0xB0, 0, 0, 0, 0, 0]), 120) == "hvc1.1.6.H120.B0"
    assert hvc1(0, 0, 2, 0x20000000, bytes([0xB0, 0, 0, 0, 0, 0]), 153) == "hvc1.2.4.L153.B0"
    assert hvc1(1, 0, 1, 0x60000000, bytes([0xB0, 0x23, 0, 0, 0, 0]), 93) == "hvc1.A1.6.L93.B0.23"


def test_an_hev1_sample_entry_is_refused(tmp_path: Path) -> None:
    # hev1 may carry parameter sets in band; HLS (and our CODECS) want hvc1.
    init = support.encode_hevc_init(tmp_path / "clip", "yuv420p")
    with pytest.raises(CodecError, match="hev1"):
        mp4_codecs(init.read_bytes().replace(b"hvc1", b"hev1"))


def test_avc1_formatting() -> None:
    assert avc1(100, 0, 40) == "avc1.640028"
    assert avc1(66, 0xC0, 13) == "avc1.42c00d"


def test_garbage_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        mp4_codecs(b"\x00\x00\x00\x10moov\x00\x00\x00\xffstbl")
    with pytest.raises(CodecError):
        mp4_codecs(b"")


@pytest.mark.parametrize("encoder,codec", [("eac3", "ec-3"), ("ac3", "ac-3")])
def test_audio_only_dolby_and_aac(tmp_path: Path, encoder: str, codec: str) -> None:
    # What an audio-only rendition's init segment and TS segment hold.
    for name, expected in ((encoder, codec), ("aac", "mp4a.40.2")):
        base = tmp_path / name
        base.mkdir()
        common = [support.ffmpeg(), "-nostdin", "-v", "error", "-f", "lavfi",
                  "-i", "sine=d=1", "-ac", "2", "-c:a", name]
        proc.run([*common, "-f", "hls", "-hls_segment_type", "fmp4",
                  "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename",
                  str(base / "seg_%d.m4s"), str(base / "index.m3u8")], timeout=support.TIMEOUT)
        proc.run([*common, "-f", "mpegts", str(base / "clip.ts")], timeout=support.TIMEOUT)
        for path in (base / "init.mp4", base / "clip.ts"):
            assert read_codecs(path) == Codecs(None, expected), path
            assert str(read_codecs(path)) == expected


def test_neither_video_nor_audio_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="neither"):
        Codecs(None, None)
