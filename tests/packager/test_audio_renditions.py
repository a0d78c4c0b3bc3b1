"""A master with several audio tracks, transcoded and packaged for real, then played
over HTTP with its keys: every track its own encrypted rendition, in its group."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    AudioInput,
    PackageResult,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from tests.packager import support
from tests.support.media import Track, make_audio_tracks_clip

SECONDS = 7
ROTATION = 2
TRACKS = [
    Track(language="eng", title="English"),
    Track(language="fra", title="Français", default=True),
    Track(language="deu", title="Deutsch", channels=1),
    Track(language="eng", title="English", channels=6),
    # Stops early: padded with silence to the video's length.
    Track(title='Director\'s "cut"\ncommentary', seconds=2),
]


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


@pytest.fixture(scope="module", params=["fmp4", "ts"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, PackageResult, dict[str, bytes]]:
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(request.param)
    master = make_audio_tracks_clip(tmp / "master.mkv", TRACKS, seconds=SECONDS)
    # 4 s segments: 2, 2, then 3 s, which joins two audio segments (fixups.grouping).
    settings = Settings(x264_preset="ultrafast", segment_seconds=4.0,
                        segment_format=request.param)
    info = probe(master, settings)
    ladder = plan_ladder(info, settings)
    transcode(master, info, ladder, tmp / "work", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), ROTATION))]
    result = package(
        tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps)
                       for r in ladder.renditions],
        keys, key_uri, ROTATION, tmp / "out",
        iframes=[VariantInput(t.name, t.width, t.height, ladder.fps) for t in ladder.iframes],
        audio=[AudioInput(a.name, a.group, a.label, a.language, a.channels, a.default)
               for a in ladder.audio])
    return tmp / "out", result, {key_uri(k.key_id): k.key for k in keys}


def media_attributes(master: m3u8.M3U8) -> list[tuple[object, ...]]:
    return [(m.group_id, m.language, m.name, m.channels, m.default, m.autoselect, m.uri)
            for m in master.media]


def test_master_lists_every_track_in_its_group(packaged) -> None:  # type: ignore[no-untyped-def]
    out, result, _ = packaged
    text = (out / "master.m3u8").read_text()
    master = m3u8.loads(text)
    assert media_attributes(master) == [
        ("audio-aac", "en", "English", "2", "NO", "YES", "audio0_aac/index.m3u8"),
        ("audio-aac", "fr", "Français", "2", "YES", "YES", "audio1_aac/index.m3u8"),
        ("audio-aac", "de", "Deutsch", "1", "NO", "YES", "audio2_aac/index.m3u8"),
        ("audio-aac", "en", "English 2", "2", "NO", "YES", "audio3_aac/index.m3u8"),
        ("audio-aac", None, "Director's 'cut' commentary", "2", "NO", "YES",
         "audio4_aac/index.m3u8"),
        ("audio-ec3", "en", "English", "6", "YES", "YES", "audio3_ec3/index.m3u8"),
    ]
    assert all(m.type == "AUDIO" for m in master.media)
    assert 'NAME="Director\'s \'cut\' commentary"' in text and "LANGUAGE=\"und\"" not in text

    # Each video rendition twice: with the AAC group, then (listed after) with E-AC-3.
    video = [r.name for r in result.renditions]
    by_group: dict[str, list[m3u8.Playlist]] = {}
    for variant in master.playlists:
        by_group.setdefault(variant.stream_info.audio, []).append(variant)
    assert sorted(by_group) == ["audio-aac", "audio-ec3"]
    for group, codec in (("audio-aac", "mp4a.40.2"), ("audio-ec3", "ec-3")):
        variants = by_group[group]
        assert sorted(v.uri for v in variants) == sorted(f"{n}/index.m3u8" for n in video)
        peak = max(a.bandwidth for a in result.audio if a.group == group)
        for v in variants:
            facts = next(r for r in result.renditions if v.uri == f"{r.name}/index.m3u8")
            assert v.stream_info.codecs == f"{facts.codecs},{codec}"
            assert v.stream_info.bandwidth == facts.bandwidth + peak
    assert master.playlists[0].stream_info.audio == "audio-aac", "AAC starts: every box has it"
    assert [p.iframe_stream_info.codecs.startswith("avc1.")
            and "mp4a" not in p.iframe_stream_info.codecs for p in master.iframe_playlists] == [
        True]


def test_every_audio_rendition_decrypts_and_decodes_whole(packaged) -> None:  # type: ignore[no-untyped-def]
    out, result, keys = packaged
    assert [(a.name, a.codecs, a.channels) for a in result.audio] == [
        ("audio0_aac", "mp4a.40.2", 2), ("audio1_aac", "mp4a.40.2", 2),
        ("audio2_aac", "mp4a.40.2", 1), ("audio3_aac", "mp4a.40.2", 2),
        ("audio4_aac", "mp4a.40.2", 2), ("audio3_ec3", "ec-3", 6)]
    with support.serve(out) as server:
        server.keys.update(keys)
        for audio in result.audio:
            url = f"{server.base}/{audio.name}/index.m3u8"
            playlist = m3u8.loads((out / audio.name / "index.m3u8").read_text())
            assert len(playlist.segments) == result.segment_count
            assert all(s.key.method == "AES-128" for s in playlist.segments)
            samples, channels, codec = support.decoded_audio(url)
            assert channels == audio.channels, audio.name
            # The whole source (a track that stopped early padded to it) and the
            # encoder's priming, which HLS keeps; beyond that only the padding of
            # the last frame and the encoder's flush.
            frame, priming = support.FRAMES[codec]
            expected = SECONDS * 48_000 + priming
            assert expected <= samples < expected + 2 * frame, (audio.name, samples)
        assert {u for u in keys} <= set(server.requests)


def test_m3u8_parses_every_playlist(packaged) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = packaged
    for path in out.rglob("*.m3u8"):
        parsed = m3u8.loads(path.read_text())
        assert parsed.is_variant == (path.name == "master.m3u8")
