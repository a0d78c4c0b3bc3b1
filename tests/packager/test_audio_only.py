"""Audio-only masters (MP3, WAV, and a Matroska file with two languages), transcoded and
packaged for real, then played over HTTP with their keys: an audio-only stream."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest

from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    AudioInput,
    PackageResult,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, plan_ladder, probe, transcode
from tests.packager import support
from tests.support.media import Track, make_audio_tracks_clip, make_clip

ROTATION = 2
SEGMENT_S = 4.0
SETTINGS = Settings(x264_preset="ultrafast", segment_seconds=SEGMENT_S)


@dataclass(frozen=True)
class Made:
    ladder: Ladder
    out: Path
    result: PackageResult
    keys: dict[str, bytes]


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


def make(master: Path, tmp: Path, settings: Settings = SETTINGS) -> Made:
    info = probe(master, settings)
    ladder = plan_ladder(info, settings)
    transcode(master, info, ladder, tmp / "work", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), ROTATION))]
    result = package(tmp / "work", [], keys, key_uri, ROTATION, tmp / "out",
                     audio=[AudioInput(a.name, a.group, a.label, a.language, a.channels,
                                       a.default) for a in ladder.audio])
    return Made(ladder, tmp / "out", result, {key_uri(k.key_id): k.key for k in keys})


# (file name, seconds, sample rate, segment format): 44.1 kHz stays 44.1 kHz.
SINGLE = [("song.mp3", 7, 44_100, "fmp4"), ("speech.wav", 5.5, 48_000, "ts")]


@pytest.fixture(scope="module", params=SINGLE, ids=[s[0] for s in SINGLE])
def single(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Made, float, int]:
    support.ffmpeg()
    name, seconds, rate, segment_format = request.param
    tmp = tmp_path_factory.mktemp(name.replace(".", "_"))
    master = make_clip(tmp / name, seconds=seconds, video=False, audio_sample_rate=rate)
    made = make(master, tmp, SETTINGS.with_(segment_format=segment_format))
    return made, seconds, source_samples(master, probe(master, SETTINGS).duration_s, rate)


def source_samples(master: Path, seconds: float, rate: int) -> int:
    """Samples of the master's first track as ffmpeg decodes it, or as many as its
    stated length if that is more (the transcode pads to it)."""
    decoded, _, _ = support.decoded_audio(str(master))
    return max(decoded, round(seconds * rate))


def test_audio_only_master_lists_its_audio_as_the_variant(single) -> None:  # type: ignore[no-untyped-def]
    made, _, _ = single
    text = (made.out / "master.m3u8").read_text()
    master = m3u8.loads(text)
    (variant,) = master.playlists
    assert variant.uri == "audio0_aac/index.m3u8"
    assert variant.stream_info.codecs == "mp4a.40.2"
    assert variant.stream_info.resolution is None and variant.stream_info.frame_rate is None
    assert "RESOLUTION" not in text and "FRAME-RATE" not in text
    assert variant.stream_info.audio == "audio-aac"
    (audio,) = made.result.audio
    assert variant.stream_info.bandwidth == audio.bandwidth
    assert [(m.type, m.group_id, m.uri, m.default) for m in master.media] == [
        ("AUDIO", "audio-aac", "audio0_aac/index.m3u8", "YES")]
    assert master.iframe_playlists == [], "no video: no trick play"
    assert made.result.renditions == () and made.result.iframes == ()


def test_audio_only_stream_is_encrypted_and_decodes_to_the_exact_sample_count(single) -> None:  # type: ignore[no-untyped-def]
    made, seconds, source = single
    (audio,) = made.result.audio
    playlist = m3u8.loads((made.out / audio.name / "index.m3u8").read_text())
    assert all(s.key.method == "AES-128" for s in playlist.segments)
    # The segment grid of a video of that length: 2 s, 2 s, then 4 s each (and the rest).
    assert [round(s.duration, 1) for s in playlist.segments] == [2.0, 2.0, seconds - 4.0]
    with support.serve(made.out) as server:
        server.keys.update(made.keys)
        samples, channels, codec = support.decoded_audio(f"{server.base}/master.m3u8")
    assert (channels, codec) == (2, "aac")
    assert samples == support.encoded_samples("aac", source)


def test_two_languages_without_video_are_one_variant_with_both_as_renditions(
        tmp_path: Path) -> None:
    support.ffmpeg()
    master = make_audio_tracks_clip(tmp_path / "radio.mka", [
        Track(language="eng", title="English"),
        Track(language="spa", title="Español", default=True),
        Track(language="eng", title="English 5.1", channels=6)], seconds=5, video=False)
    made = make(master, tmp_path)
    source = source_samples(master, probe(master, SETTINGS).duration_s, 48_000)
    master_playlist = m3u8.loads((made.out / "master.m3u8").read_text())
    # One variant per group, each its group's default rendition: the language is a
    # choice among EXT-X-MEDIA, not a bit rate a player may switch to on its own.
    assert [(p.uri, p.stream_info.codecs, p.stream_info.audio)
            for p in master_playlist.playlists] == [
        ("audio1_aac/index.m3u8", "mp4a.40.2", "audio-aac"),
        ("audio2_ec3/index.m3u8", "ec-3", "audio-ec3")]
    assert [(m.group_id, m.language, m.name, m.default) for m in master_playlist.media] == [
        ("audio-aac", "en", "English", "NO"), ("audio-aac", "es", "Español", "YES"),
        ("audio-aac", "en", "English 5.1", "NO"), ("audio-ec3", "en", "English 5.1", "YES")]
    with support.serve(made.out) as server:
        server.keys.update(made.keys)
        for audio in made.result.audio:
            samples, channels, codec = support.decoded_audio(
                f"{server.base}/{audio.name}/index.m3u8")
            assert channels == audio.channels
            assert samples == support.encoded_samples(codec, source), audio.name
