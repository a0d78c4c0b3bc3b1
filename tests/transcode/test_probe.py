from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode import MediaError, SourceInfo, probe, probe_audio_file
from stb_origin.transcode.argv import build_argv
from stb_origin.transcode.ladder import plan_ladder
from stb_origin.transcode.probe import source_from_ffprobe
from stb_origin.transcode.run import transcode
from tests.support.captions import make_captions_clip
from tests.support.media import Subtitle, make_subtitles_clip, make_subtitles_only
from tests.transcode.support import Clip, source

SETTINGS = Settings(x264_preset="ultrafast", segment_seconds=2.0)


def refused(path: Path, settings: Settings = SETTINGS) -> MediaError:
    with pytest.raises(MediaError) as caught:
        probe(path, settings)
    return caught.value


# Real files ---------------------------------------------------------------------------


def test_good_clip(clip: Clip) -> None:
    info = probe(clip("good.mp4", seconds=3), SETTINGS)
    assert isinstance(info, SourceInfo)
    assert abs(info.duration_s - 3.0) < 0.1
    assert (info.width, info.height) == (640, 360)
    assert info.fps == 30.0
    assert not info.variable_frame_rate and not info.interlaced
    assert (info.pix_fmt, info.bit_depth, info.video_codec) == ("yuv420p", 8, "h264")
    assert info.video_bitrate and info.video_bitrate > 0
    assert info.rotation == 0
    (audio,) = info.audio_tracks
    assert info.has_audio
    assert (audio.index, audio.codec, audio.channels, audio.sample_rate) == (1, "aac", 2, 48_000)
    assert "mp4" in info.format_name
    assert info.size_bytes == clip("good.mp4").stat().st_size
    record = info.to_json()
    assert record["width"] == 640 and record["has_audio"] is True


def test_rotated_phone_video_reports_display_dimensions(clip: Clip) -> None:
    info = probe(clip("rotated.mp4", seconds=2, rotate=90), SETTINGS)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (360, 640)


def test_odd_dimensions(clip: Clip) -> None:
    info = probe(clip("odd.mp4", seconds=2, size="641x359"), SETTINGS)
    assert (info.width, info.height) == (641, 359)


def test_non_square_pixels_give_display_width(clip: Clip) -> None:
    path = clip("anamorphic.mp4", seconds=2, size="720x576", fps=25,
                extra_output_args=["-aspect", "16:9"])
    info = probe(path, SETTINGS)
    assert (info.width, info.height) == (1024, 576)


def test_interlaced(clip: Clip) -> None:
    info = probe(clip("interlaced.ts", seconds=2, fps=25, interlaced=True), SETTINGS)
    assert info.interlaced
    assert info.fps == 25.0
    assert not info.variable_frame_rate


def test_variable_frame_rate(clip: Clip) -> None:
    info = probe(clip("vfr.mp4", seconds=3, vfr=True), SETTINGS)
    assert info.variable_frame_rate
    assert 1 < info.fps < 30


def test_ten_bit(clip: Clip) -> None:
    info = probe(clip("10bit.mp4", seconds=2, pix_fmt="yuv420p10le"), SETTINGS)
    assert (info.pix_fmt, info.bit_depth) == ("yuv420p10le", 10)


def test_four_two_two(clip: Clip) -> None:
    info = probe(clip("422.mkv", seconds=2, pix_fmt="yuv422p"), SETTINGS)
    assert (info.pix_fmt, info.bit_depth) == ("yuv422p", 8)
    assert "matroska" in info.format_name


def test_a_subtitle_track_is_reported_beside_the_audio(clip: Clip) -> None:
    info = probe(clip("subs.mkv", seconds=2, subtitles=True), SETTINGS)
    assert info.video_stream_index == 0
    assert [a.index for a in info.audio_tracks] == [1]
    assert [(t.index, t.codec, t.kind) for t in info.subtitle_tracks] == [(2, "subrip", "text")]
    assert not info.closed_captions


def test_every_subtitle_track_is_reported_and_pictures_are_left_out_with_a_warning(
        tmp_path: Path, ffmpeg: None) -> None:
    cues = ((0.5, 1.0, "x"),)
    master = make_subtitles_clip(tmp_path / "mixed.mkv", [
        Subtitle(cues, language="eng", title="English"),
        Subtitle(cues, language="fre", forced=True, fmt="ass"),
        Subtitle(cues, language="ger", title="Blu-ray", fmt="pgs"),
    ], seconds=2)
    record = probe(master, SETTINGS).to_json()
    assert list(record["subtitle_tracks"]) == [
        {"index": 2, "codec": "subrip", "kind": "text", "language": "eng", "title": "English",
         "forced": False, "default": False},
        {"index": 3, "codec": "ass", "kind": "text", "language": "fre", "title": None,
         "forced": True, "default": False},
        {"index": 4, "codec": "hdmv_pgs_subtitle", "kind": "image", "language": "ger",
         "title": "Blu-ray", "forced": False, "default": False},
    ]
    assert record["warnings"] == [
        "subtitle track 4 (hdmv_pgs_subtitle) is made of pictures, which WebVTT cannot carry:"
        " left out"]


def test_captions_in_the_video_are_found(tmp_path: Path, ffmpeg: None) -> None:
    master = make_captions_clip(tmp_path / "cc.mp4", [(0.5, 1.0, "HI")], seconds=2)
    assert probe(master, SETTINGS).closed_captions


def test_video_only(clip: Clip) -> None:
    info = probe(clip("silent.mp4", seconds=2, audio=False), SETTINGS)
    assert not info.has_audio
    assert info.audio_tracks == ()


def test_container_without_duration_is_measured(clip: Clip) -> None:
    # A "live" Matroska file has no duration in its header.
    info = probe(clip("live.mkv", seconds=3, extra_output_args=["-live", "1"]), SETTINGS)
    assert abs(info.duration_s - 3.0) < 0.2


@pytest.mark.parametrize("name", ["song.m4a", "song.mp3", "song.wav"])
def test_audio_only_is_accepted_as_an_audio_only_source(clip: Clip, name: str) -> None:
    info = probe(clip(name, seconds=2, video=False, audio_sample_rate=44_100), SETTINGS)
    assert not info.has_video and info.video_stream_index is None
    assert (info.width, info.height, info.fps) == (0, 0, 0.0)
    (track,) = info.audio_tracks
    assert (track.channels, track.sample_rate, track.input_index) == (2, 44_100, 0)
    assert abs(info.duration_s - 2.0) < 0.1
    assert info.to_json()["has_video"] is False


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    error = refused(path)
    assert error.code == "invalid_media" and "empty" in error.message


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file(tmp_path: Path, ffmpeg: None, name: str) -> None:
    path = tmp_path / name
    path.write_text("Meeting notes\nnothing to see here\n" * 50)
    assert refused(path).code == "invalid_media"


def test_truncated_mp4_with_index_at_the_end(clip: Clip, tmp_path: Path) -> None:
    whole = clip("good.mp4", seconds=3).read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(whole[: len(whole) // 2])
    error = refused(half)
    assert error.code == "invalid_media"
    assert "moov" in error.message


def test_truncated_mp4_with_index_first(clip: Clip, tmp_path: Path) -> None:
    whole = clip("faststart.mp4", seconds=8, extra_output_args=["-movflags", "+faststart"])
    half = tmp_path / "half.mp4"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    error = refused(half)
    assert error.code == "invalid_media"
    assert error.message.startswith("truncated file")


def test_zero_second_clip(clip: Clip) -> None:
    error = refused(clip("one-frame.mp4", seconds=1, audio=False,
                         extra_output_args=["-frames:v", "1"]))
    assert error.code == "too_short"


def test_too_long(clip: Clip) -> None:
    error = refused(clip("good.mp4", seconds=3), SETTINGS.with_(max_source_seconds=2.0))
    assert error.code == "too_long"
    assert "limit of 2 s" in error.message


def test_absurd_dimensions(clip: Clip) -> None:
    error = refused(clip("wide.mp4", seconds=1, size="8200x64", audio=False))
    assert error.code == "too_large_dimensions"
    assert "8200x64" in error.message


# Hostile files ------------------------------------------------------------------------

PASSWD_MARKERS = ("root:", "/bin/", "nologin", "daemon")


def _no_leak(message: str) -> None:
    for marker in PASSWD_MARKERS:
        assert marker not in message


def test_playlist_pointing_at_etc_passwd_refused(tmp_path: Path, ffmpeg: None) -> None:
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                        "file:///etc/passwd\n#EXT-X-ENDLIST\n")
    error = refused(playlist)
    assert error.code == "invalid_media"
    _no_leak(error.message)


def test_playlist_pointing_at_real_media_refused(clip: Clip, tmp_path: Path) -> None:
    # Without the whitelists ffprobe follows this playlist and reports a valid stream.
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                        f"{clip('good.mp4', seconds=3).as_uri()}\n#EXT-X-ENDLIST\n")
    assert refused(playlist).code == "invalid_media"


@pytest.mark.parametrize("target", ["/etc/passwd", "good.mp4"])
def test_ffconcat_refused(clip: Clip, tmp_path: Path, target: str) -> None:
    (tmp_path / "good.mp4").write_bytes(clip("good.mp4", seconds=3).read_bytes())
    listing = tmp_path / "upload.ffconcat"
    listing.write_text(f"ffconcat version 1.0\nfile {target}\n")
    error = refused(listing)
    assert error.code == "invalid_media"
    _no_leak(error.message)


def test_transcode_refuses_a_playlist_even_without_probe(tmp_path: Path, ffmpeg: None) -> None:
    # Whatever slips past probe, ffmpeg itself opens the upload with the same whitelists.
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
                        "file:///etc/passwd\n#EXT-X-ENDLIST\n")
    src = source(width=640, height=360, duration_s=10.0)
    ladder = plan_ladder(src, SETTINGS)
    assert "-format_whitelist" in build_argv(playlist, src, ladder, tmp_path / "out", SETTINGS)
    with pytest.raises(MediaError) as caught:
        transcode(playlist, src, ladder, tmp_path / "out", SETTINGS)
    assert caught.value.code == "transcode_failed"
    _no_leak(caught.value.message)
    assert not list((tmp_path / "out").rglob("seg_*"))


# Parsing ffprobe's JSON (pure) --------------------------------------------------------


def _probe_json(**video: Any) -> dict[str, Any]:
    stream = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920,
              "height": 1080, "avg_frame_rate": "30/1", "r_frame_rate": "30/1",
              "pix_fmt": "yuv420p", **video}
    return {"format": {"duration": "10.0", "format_name": "mov", "bit_rate": "5000000"},
            "streams": [stream]}


def test_subtitle_kinds_and_dispositions() -> None:
    data = _probe_json()
    data["streams"] += [
        {"index": 1, "codec_type": "subtitle", "codec_name": "dvb_subtitle",
         "disposition": {"forced": 1, "default": 0}, "tags": {"LANGUAGE": "dan"}},
        {"index": 2, "codec_type": "subtitle", "codec_name": "eia_608"},
        {"index": 3, "codec_type": "subtitle", "codec_name": "mov_text",
         "disposition": {"default": 1}},
    ]
    info = source_from_ffprobe(data, 1)
    assert [(t.codec, t.kind, t.language, t.forced, t.default) for t in info.subtitle_tracks] == [
        ("dvb_subtitle", "image", "dan", True, False), ("eia_608", "unknown", None, False, False),
        ("mov_text", "text", None, False, True)]
    assert info.warnings == [
        "subtitle track 1 (dvb_subtitle) is made of pictures, which WebVTT cannot carry:"
        " left out",
        "subtitle track 2 (eia_608) is in a format that cannot be made into WebVTT: left out"]


def test_video_start_counts_from_the_start_of_the_file() -> None:
    data = _probe_json(start_time="1.500000")
    data["format"]["start_time"] = "1.400000"
    assert abs(source_from_ffprobe(data, 1).video_start_s - 0.1) < 1e-9
    assert source_from_ffprobe(_probe_json(), 1).video_start_s == 0.0


def test_cover_art_is_not_video() -> None:
    data = {"format": {"duration": "100.0"}, "streams": [
        {"index": 0, "codec_type": "audio", "codec_name": "mp3"},
        {"index": 1, "codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
         "disposition": {"attached_pic": 1}},
    ]}
    info = source_from_ffprobe(data, 1000)
    assert not info.has_video
    assert [t.index for t in info.audio_tracks] == [0]


def test_subtitles_alone_are_no_media(ffmpeg: None, tmp_path: Path) -> None:
    error = refused(make_subtitles_only(tmp_path / "subs.mkv"))
    assert (error.code, error.message) == ("no_media", "no audio or video stream")


def test_no_streams_at_all() -> None:
    with pytest.raises(MediaError) as caught:
        source_from_ffprobe({"format": {}, "streams": []}, 10)
    assert (caught.value.code, caught.value.message) == ("no_media", "no audio or video stream")


def test_legacy_rotate_tag_and_display_matrix() -> None:
    assert source_from_ffprobe(_probe_json(tags={"rotate": "270"}), 1).height == 1920
    matrix = [{"side_data_type": "Display Matrix", "rotation": -90}]
    info = source_from_ffprobe(_probe_json(side_data_list=matrix), 1)
    assert (info.width, info.height, info.rotation) == (1080, 1920, 270)
    upside_down = [{"side_data_type": "Display Matrix", "rotation": 180}]
    assert source_from_ffprobe(_probe_json(side_data_list=upside_down), 1).width == 1920


def test_rotation_applies_after_non_square_pixels() -> None:
    info = source_from_ffprobe(_probe_json(width=1440, height=1080, sample_aspect_ratio="4:3",
                                           tags={"rotate": "90"}), 1)
    assert (info.width, info.height) == (1080, 1920)


def test_frame_rate_fallbacks() -> None:
    info = source_from_ffprobe(_probe_json(avg_frame_rate="0/0", r_frame_rate="0/0"), 1)
    assert info.fps == 30.0 and info.variable_frame_rate
    info = source_from_ffprobe(_probe_json(avg_frame_rate="0/0", r_frame_rate="25/1"), 1)
    assert info.fps == 25.0
    # A field rate reported for interlaced video is not variable frame rate.
    info = source_from_ffprobe(_probe_json(avg_frame_rate="25/1", r_frame_rate="50/1",
                                           field_order="tt"), 1)
    assert (info.fps, info.variable_frame_rate, info.interlaced) == (25.0, False, True)


def test_video_bitrate_estimated_from_the_container() -> None:
    data = _probe_json()
    data["streams"].append({"index": 1, "codec_type": "audio", "codec_name": "aac",
                            "bit_rate": "128000", "channels": 2, "sample_rate": "48000"})
    assert source_from_ffprobe(data, 1).video_bitrate == 5_000_000 - 128_000
    assert source_from_ffprobe(_probe_json(bit_rate="3000000"), 1).video_bitrate == 3_000_000


# Sidecar audio files ------------------------------------------------------------------


def test_a_sidecar_wav_is_one_audio_track_with_its_duration(clip: Clip) -> None:
    found = probe_audio_file(clip("dub.wav", seconds=2, video=False, audio_channels=1),
                             SETTINGS)
    assert abs(found.duration_s - 2.0) < 0.05
    assert (found.track.index, found.track.codec, found.track.channels,
            found.track.sample_rate) == (0, "pcm_s16le", 1, 48_000)


def test_a_sidecar_with_video_is_refused(clip: Clip) -> None:
    with pytest.raises(MediaError) as caught:
        probe_audio_file(clip("good.mp4", seconds=3), SETTINGS)
    assert caught.value.code == "video_in_audio_track"


def test_a_sidecar_with_two_audio_streams_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.mka"
    proc.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1",
              "-f", "lavfi", "-i", "sine=frequency=880:duration=1", "-map", "0", "-map", "1",
              "-c:a", "pcm_s16le", str(path)], timeout=60)
    with pytest.raises(MediaError) as caught:
        probe_audio_file(path, SETTINGS)
    assert (caught.value.code, caught.value.message) == (
        "not_one_audio_stream",
        "the file has 2 audio streams; a sidecar audio track has exactly one")
