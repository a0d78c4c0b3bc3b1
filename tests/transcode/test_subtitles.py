from __future__ import annotations

from pathlib import Path

import pytest

from stb_origin.settings import Settings
from stb_origin.transcode import MediaError, probe
from stb_origin.transcode.probe import SubtitleTrack
from stb_origin.transcode.subtitles import (
    SubtitleSource,
    extract_argv,
    master_subtitles,
    plan_subtitles,
    read_cues,
)
from stb_origin.transcode.webvtt import Cue
from tests.support.media import Subtitle, make_subtitles_clip
from tests.transcode.support import source

SETTINGS = Settings(x264_preset="ultrafast", segment_seconds=2.0)
CUES = ((0.5, 1.5, "one"), (1.8, 2.6, "two\nlines"))


def test_only_text_tracks_become_renditions() -> None:
    info = source(subtitle_tracks=(
        SubtitleTrack(2, "subrip", "text", "eng", None, False, True),
        SubtitleTrack(3, "hdmv_pgs_subtitle", "image", "eng", None, False, False),
        SubtitleTrack(4, "ass", "text", "fre", "Commentaire", True, False),
    ))
    assert [(s.stream_index, s.language, s.title, s.forced) for s in master_subtitles(info)] == [
        (2, "eng", None, False), (4, "fre", "Commentaire", True)]


def test_labels_come_from_titles_then_languages_and_stay_unique_and_clean() -> None:
    planned = plan_subtitles([
        SubtitleSource("eng", None, False, stream_index=2),
        SubtitleSource("eng", None, True, stream_index=3),
        SubtitleSource("eng", "English", False, stream_index=4),
        SubtitleSource('en"\n#EXT-X-ENDLIST', 'SDH "full"\r\n#EXT-X-KEY', False,
                       stream_index=5),
        SubtitleSource(None, None, False, path=Path("/sidecar.vtt")),
    ])
    assert [(r.name, r.language, r.label, r.forced) for r in planned] == [
        ("subs0", "en", "English", False),
        ("subs1", "en", "English (forced)", True),
        ("subs2", "en", "English 2", False),
        ("subs3", None, "SDH 'full' #EXT-X-KEY", False),
        ("subs4", None, "Subtitles", False),
    ]


def test_a_source_is_a_stream_or_a_file() -> None:
    with pytest.raises(ValueError):
        SubtitleSource("eng", None, False)
    with pytest.raises(ValueError):
        SubtitleSource("eng", None, False, stream_index=2, path=Path("x.vtt"))


def test_the_master_is_opened_as_every_upload_is() -> None:
    (rendition,) = plan_subtitles([SubtitleSource("eng", None, False, stream_index=3)])
    argv = extract_argv(Path("/in/master.mkv"), [rendition], Path("/work/subs.mkv"))
    at = argv.index("-i")
    assert argv[at - 4:at + 2] == ["-protocol_whitelist", "file", "-format_whitelist",
                                   argv[at - 1], "-i", "file:/in/master.mkv"]
    assert "-copyts" not in argv  # times from the file's start, never negative
    assert argv[at + 2:] == ["-map", "0:3", "-map_metadata", "-1", "-map_chapters", "-1",
                             "-c:s", "webvtt", "-f", "matroska", "/work/subs.mkv"]


def test_cues_are_timed_from_the_first_video_frame(tmp_path: Path) -> None:
    # Matroska with AAC: the video and the subtitles start 21 ms after the file.
    master = make_subtitles_clip(tmp_path / "late.mkv", [
        Subtitle(CUES, language="eng"), Subtitle(CUES, language="fre", fmt="ass")], seconds=3)
    info = probe(master, SETTINGS)
    assert info.video_start_s > 0.01
    sidecar = tmp_path / "sidecar.vtt"
    sidecar.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfrom a <i>file</i>\n")
    planned = plan_subtitles([*master_subtitles(info),
                              SubtitleSource("deu", None, False, path=sidecar)])
    cues = read_cues(master, info, planned, tmp_path / "work", SETTINGS)
    expected = [Cue(0.5, 1.5, "one"), Cue(1.8, 2.6, "two\nlines")]
    for name in ("subs0", "subs1"):
        assert [c.text for c in cues[name]] == [c.text for c in expected]
        for got, want in zip(cues[name], expected, strict=True):
            assert abs(got.start - want.start) < 0.001 and abs(got.end - want.end) < 0.001
    assert cues["subs2"] == [Cue(1.0, 2.0, "from a file")]


def test_a_broken_sidecar_names_its_line(tmp_path: Path) -> None:
    sidecar = tmp_path / "broken.vtt"
    sidecar.write_text("WEBVTT\n\n00:00:01.000 --> later\nx\n")
    planned = plan_subtitles([SubtitleSource("eng", None, False, path=sidecar)])
    with pytest.raises(MediaError) as caught:
        read_cues(tmp_path / "unused.mkv", source(), planned, tmp_path / "work", SETTINGS)
    assert caught.value.code == "invalid_subtitles"
    assert caught.value.message.startswith("English: line 3: not a cue timing")
