"""Masters with text subtitle tracks, transcoded and packaged for real, then read
over HTTP: every track a WebVTT rendition on the video's segments, its cues shown
at their source times, and the video still decoding whole."""

from __future__ import annotations

import itertools
import json
import re
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from stb_origin import proc
from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    PackageResult,
    SubtitleInput,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from stb_origin.transcode.subtitles import master_subtitles, plan_subtitles, read_cues
from stb_origin.transcode.webvtt import parse_webvtt
from tests.packager import support
from tests.support.media import Subtitle, make_subtitles_clip
from tests.support.vtt import shown_cues

SECONDS = 5
FPS = 25
ROTATION = 2
# The second cue spans the 2 s segment boundary; the last one the 4 s one.
CUES = {
    "en": ((0.5, 1.5, "Hello there."), (1.8, 2.6, "Two\nlines"), (3.9, 4.6, "Last one")),
    "fr": ((0.4, 1.2, "Bonjour."), (1.9, 2.2, "Deux"), (3.0, 3.5, "Fin")),
    "de": ((1.0, 2.5, "Schild: Ausgang"),),
}
TRACKS = [
    Subtitle(CUES["en"], language="eng", title="English"),
    Subtitle(CUES["fr"], language="fre"),
    Subtitle(CUES["de"], language="ger", forced=True),
]
HOSTILE = (
    (0.5, 1.5, "<script>alert(1)</script> & <b>bold</b>"),
    (1.8, 2.6, "--> 00:00:09.000 & x"),
    # In ASS a blank line and a timing line are just text (\N\N): they must stay text.
    (2.7, 2.9, "end\n\n00:00:09.000 --> 00:00:10.000\nforged"),
)


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


def _package(master: Path, tmp: Path, segment_format: str, preset: str = "ultrafast"
             ) -> tuple[Path, PackageResult, dict[str, bytes]]:
    settings = Settings(x264_preset=preset, segment_seconds=2.0, segment_format=segment_format)
    info = probe(master, settings)
    ladder = plan_ladder(info, settings)
    transcode(master, info, ladder, tmp / "work", settings)
    subtitles = plan_subtitles(master_subtitles(info))
    cues = read_cues(master, info, subtitles, tmp / "subtitles", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), ROTATION))]
    result = package(
        tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps)
                       for r in ladder.renditions],
        keys, key_uri, ROTATION, tmp / "out",
        subtitles=[SubtitleInput(s.name, s.label, s.language, s.forced, tuple(cues[s.name]))
                   for s in subtitles])
    return tmp / "out", result, {key_uri(k.key_id): k.key for k in keys}


# veryfast makes B-frames: the first frame shown is not the first decoded, and in
# fMP4 it has a composition offset that X-TIMESTAMP-MAP must include.
@pytest.fixture(scope="module", params=[("mkv", "fmp4", "ultrafast"), ("mp4", "ts", "ultrafast"),
                                        ("mkv", "ts", "veryfast"), ("mp4", "fmp4", "veryfast")],
                ids=["subrip-fmp4", "mov_text-ts", "subrip-ts-bframes",
                     "mov_text-fmp4-bframes"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, PackageResult, dict[str, bytes]]:
    container, segment_format, preset = request.param
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(f"{container}-{segment_format}")
    # Matroska with FLAC: see test_the_video_still_decodes_to_every_frame.
    master = make_subtitles_clip(tmp / f"master.{container}", TRACKS, seconds=SECONDS, fps=FPS,
                                 audio_codec="flac" if container == "mkv" else "aac")
    return _package(master, tmp, segment_format, preset)


def first_video_pts(url: str) -> int:
    """The first video frame's PTS in 90 kHz units, as a player reading the stream
    finds it (ffprobe through the hls demuxer: raw TS PTS, or the fMP4 timeline)."""
    done = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals",
                     "%+#16", "-show_entries", "stream=time_base:packet=pts", "-of", "json",
                     url], timeout=support.TIMEOUT)
    data = json.loads(done.stdout)
    base = Fraction(data["streams"][0]["time_base"])
    return round(min(int(p["pts"]) for p in data["packets"]) * base * 90_000)


def test_master_lists_each_track_and_every_variant_names_the_group(packaged) -> None:  # type: ignore[no-untyped-def]
    out, result, _ = packaged
    master = m3u8.loads((out / "master.m3u8").read_text())
    assert [(m.type, m.group_id, m.language, m.name, m.default, m.autoselect, m.forced, m.uri)
            for m in master.media] == [
        ("SUBTITLES", "subs", "en", "English", "NO", "YES", "NO", "subs0/index.m3u8"),
        ("SUBTITLES", "subs", "fr", "French", "NO", "YES", "NO", "subs1/index.m3u8"),
        ("SUBTITLES", "subs", "de", "German (forced)", "NO", "YES", "YES", "subs2/index.m3u8"),
    ]
    assert master.playlists
    assert all(p.stream_info.subtitles == "subs" for p in master.playlists)
    # No captions in this master: said so on every variant.
    assert all(p.stream_info.closed_captions == "NONE" for p in master.playlists)
    assert [(s.name, s.language, s.forced, s.cue_count, s.segment_count)
            for s in result.subtitles] == [
        ("subs0", "en", False, 3, result.segment_count),
        ("subs1", "fr", False, 3, result.segment_count),
        ("subs2", "de", True, 1, result.segment_count)]


def test_every_cue_is_shown_at_its_source_time_in_each_segment_it_spans(packaged) -> None:  # type: ignore[no-untyped-def]
    out, result, keys = packaged
    video = m3u8.loads((out / result.renditions[0].name / "index.m3u8").read_text())
    boundaries = [0.0, *itertools.accumulate(float(s.duration) for s in video.segments)]
    with support.serve(out) as server:
        server.keys.update(keys)
        pts = first_video_pts(f"{server.base}/{result.renditions[0].name}/index.m3u8")
    for sub, language in zip(result.subtitles, ("en", "fr", "de"), strict=True):
        playlist = m3u8.loads((out / sub.name / "index.m3u8").read_text())
        # The video's segments exactly, and clear.
        assert [s.duration for s in playlist.segments] == [s.duration for s in video.segments]
        assert all(s.key is None for s in playlist.segments)
        segments = [(out / sub.name / s.uri).read_text() for s in playlist.segments]
        for n, (start, end, text) in enumerate(CUES[language]):
            spans = [i for i in range(len(segments))
                     if start < boundaries[i + 1] and end > boundaries[i]]
            for i, segment in enumerate(segments):
                shown = [c for c in shown_cues(segment, pts) if c.text == text]
                assert len(shown) == (1 if i in spans else 0), (language, n, i, segment)
                for cue in shown:
                    assert abs(cue.start - start) < 0.001 and abs(cue.end - end) < 0.001, (
                        language, cue, start, end)


def test_the_video_still_decodes_to_every_frame(packaged) -> None:  # type: ignore[no-untyped-def]
    # Masters without a late video start: one whose video starts 21 ms after the
    # file (Matroska with AAC) gains a frame in the fps filter, subtitles or not.
    out, result, keys = packaged
    with support.serve(out) as server:
        server.keys.update(keys)
        for rendition in result.renditions:
            frames = support.decode(f"{server.base}/{rendition.name}/index.m3u8")
            assert frames[0] == SECONDS * FPS, rendition.name


def test_m3u8_parses_every_playlist(packaged) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = packaged
    for path in out.rglob("*.m3u8"):
        assert m3u8.loads(path.read_text()).is_variant == (path.name == "master.m3u8")


def test_hostile_text_and_tags_land_escaped(tmp_path: Path) -> None:
    support.ffmpeg()
    master = make_subtitles_clip(tmp_path / "hostile.mkv", [
        Subtitle(HOSTILE, language='en"\n#EXT-X-ENDLIST', title='x"\n#EXT-X-KEY:METHOD=NONE'),
        Subtitle(HOSTILE, language="eng", title="ASS styled", fmt="ass"),
    ], seconds=3, fps=FPS)
    out, result, _ = _package(master, tmp_path, "ts")

    text = (out / "master.m3u8").read_text()
    master_playlist = m3u8.loads(text)
    assert [(m.language, m.name) for m in master_playlist.media] == [
        (None, "x' #EXT-X-KEY:METHOD=NONE"), ("en", "ASS styled")]
    tags = [line.split(":")[0] for line in text.splitlines() if line.startswith("#")]
    assert "#EXT-X-ENDLIST" not in tags and "#EXT-X-KEY" not in tags

    # SubRip reads its own lines: there the blank line and timing line make a cue
    # of their own (past the end), as any SubRip reader shows it; ASS keeps them text.
    expected = {
        "subs0": {(0.5, 1.5, "alert(1) & bold"), (1.8, 2.6, "--> 00:00:09.000 & x"),
                  (2.7, 2.9, "end"), (9.0, 10.0, "forged")},
        "subs1": {(0.5, 1.5, "alert(1) & bold"), (1.8, 2.6, "--> 00:00:09.000 & x"),
                  (2.7, 2.9, "end\n00:00:09.000 --> 00:00:10.000\nforged")},
    }
    for sub in result.subtitles:
        playlist = m3u8.loads((out / sub.name / "index.m3u8").read_text())
        segments = [(out / sub.name / s.uri).read_text() for s in playlist.segments]
        for segment in segments:
            # Only real timing lines carry "-->"; no tag survives; & < > are escaped.
            body = segment.split("\n\n", 1)[1]
            timing = [line for line in body.splitlines() if "-->" in line]
            assert all(_TIMING.fullmatch(line) for line in timing), segment
            assert "<" not in body and ">" not in body.replace(" --> ", "")
            assert not re.search(r"&(?!amp;|lt;|gt;)", body)
        # Cue times as written: X-TIMESTAMP-MAP is checked in the test above.
        assert {(c.start, c.end, c.text)
                for segment in segments for c in parse_webvtt(segment)} == expected[sub.name]


_TIMING = re.compile(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}")
