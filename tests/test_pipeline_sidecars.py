"""Sidecar tracks through the pipeline, in-process against real Redis, ffmpeg, storage
and SQLite: a dub becomes one more audio rendition of a new version, decoded whole,
while the version before it plays on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import m3u8
import pytest

from stb_origin import pipeline
from stb_origin.assets.tracks import Kind
from stb_origin.drm import keystore
from stb_origin.ingest import sidecars
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services
from tests.packager import support
from tests.support.media import make_clip
from tests.support.workers import asset_row
from tests.test_chunked import spans_encoded

SECONDS = 3
RATE = 48_000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def master(media: Path) -> Path:
    return make_clip(media / "master.mp4", seconds=SECONDS, size="320x180", fps=25)


@pytest.fixture(scope="module")
def dub(media: Path) -> Path:
    return make_clip(media / "dub.wav", seconds=SECONDS, video=False, audio_sample_rate=RATE)


@pytest.fixture
def origin(services: Services, tmp_path: Path) -> Iterator[support.HlsServer]:
    """A plain HTTP server for what the asset publishes, and its keys at the URIs
    the playlists name (the settings' key_uri_base points at it)."""
    with support.serve(tmp_path / "served") as server:
        services.settings = services.settings.with_(key_uri_base=server.base)
        yield server


def _served(services: Services, server: support.HlsServer, asset_id: str) -> None:
    """What storage holds for the asset now, on the server, with its keys."""
    for name in services.storage.list_keys(f"hls/{asset_id}/"):
        (server.root / name).parent.mkdir(parents=True, exist_ok=True)
        services.storage.download(name, server.root / name)
    with services.db.session() as session:
        for key_id in keystore.key_ids(session, asset_id):
            key = keystore.load(session, asset_id, key_id, services.envelope)
            assert key is not None
            server.keys[f"/keys/{asset_id}/{key_id}"] = key


def _audio_media(services: Services, asset_id: str) -> list[m3u8.Media]:
    text = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    return [m for m in m3u8.loads(text).media if m.type == "AUDIO"]


def _assert_whole(server: support.HlsServer, asset_id: str, media: m3u8.Media) -> None:
    samples, channels, codec = support.decoded_audio(f"{server.base}/hls/{asset_id}/{media.uri}")
    frame, priming = support.FRAMES[codec]
    expected = SECONDS * RATE + priming
    assert (codec, channels) == ("aac", 2)
    assert expected <= samples < expected + 2 * frame, (media.name, samples)


def _add(services: Services, asset_id: str, path: Path, language: str, name: str) -> None:
    upload = path.with_name(f"upload-{language}{path.suffix}")
    upload.write_bytes(path.read_bytes())
    sidecars.add_track(services, asset_id,
                       sidecars.TrackFacts(Kind.AUDIO, language, name, False), upload,
                       sidecars.FILE_TYPES["audio/wav"])


def test_a_wav_dub_gives_a_new_version_with_one_more_audio_rendition(
        services, origin, master, dub):
    asset_id = str(accept_source(services, master, ".mp4", "film",
                                 master.stat().st_size)["id"])
    assert pipeline.process(services, asset_id) == "ready"
    first = asset_row(services, asset_id).version
    assert [m.language for m in _audio_media(services, asset_id)] == [None]

    _add(services, asset_id, dub, "de", "Deutsch (Synchro)")
    # One more SUBTITLES rendition, beside the master's (transcode.subtitles).
    subtitles = dub.with_name("forced.vtt")
    subtitles.write_text("WEBVTT\n\n00:00.500 --> 00:01.500\nHallo\n")
    sidecars.add_track(services, asset_id,
                       sidecars.TrackFacts(Kind.SUBTITLES, "de", "Deutsch", True), subtitles,
                       sidecars.FILE_TYPES["text/vtt"])
    queued = asset_row(services, asset_id)
    assert (queued.status, queued.version) == ("queued", first)
    _served(services, origin, asset_id)
    [before] = _audio_media(services, asset_id)
    _assert_whole(origin, asset_id, before)  # the old version plays while it waits

    assert pipeline.process(services, asset_id) == "ready"
    asset = asset_row(services, asset_id)
    assert asset.version != first
    audio = _audio_media(services, asset_id)
    assert [(m.group_id, m.language, m.name, m.default, m.autoselect) for m in audio] == [
        ("audio-aac", None, "Audio", "YES", "YES"),
        ("audio-aac", "de", "Deutsch (Synchro)", "NO", "YES")]
    assert [(r["name"], r["language"], r["label"]) for r in asset.renditions or []
            if r["type"] == "audio"] == [("audio0_aac", None, "Audio"),
                                         ("audio1_aac", "de", "Deutsch (Synchro)")]
    master_text = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    [subtitles] = [m for m in m3u8.loads(master_text).media if m.type == "SUBTITLES"]
    assert (subtitles.language, subtitles.name, subtitles.forced) == ("de", "Deutsch", "YES")
    playlist = m3u8.loads(services.storage.get_bytes(
        f"hls/{asset_id}/{subtitles.uri}").decode())
    folder = subtitles.uri.rsplit("/", 1)[0]
    cues = "".join(services.storage.get_bytes(f"hls/{asset_id}/{folder}/{s.uri}").decode()
                   for s in playlist.segments)
    assert "Hallo" in cues
    _served(services, origin, asset_id)
    for media in audio:
        _assert_whole(origin, asset_id, media)
    # The version it replaced is still there for players and CDNs that hold it.
    _assert_whole(origin, asset_id, m3u8.Media(uri=f"{first}/audio0_aac/index.m3u8",
                                               name="first"))


def test_a_track_added_during_a_run_is_in_the_run_that_publishes(
        services, origin, master, dub):
    asset_id = str(accept_source(services, master, ".mp4", "film",
                                 master.stat().st_size)["id"])
    real_publish = pipeline.publish

    def publish_late(storage, asset, version, out_dir):  # type: ignore[no-untyped-def]
        # The run has transcoded without it: it must not be the one that is published.
        _add(services, asset_id, dub, "it", "Italiano")
        real_publish(storage, asset, version, out_dir)

    pipeline.publish = publish_late  # type: ignore[assignment]
    try:
        assert pipeline.process(services, asset_id) == "superseded"
    finally:
        pipeline.publish = real_publish  # type: ignore[assignment]
    assert asset_row(services, asset_id).status == "queued"
    assert list(services.storage.list_keys(f"hls/{asset_id}/master.m3u8")) == [], "not live"

    assert pipeline.process(services, asset_id) == "ready"
    assert [m.language for m in _audio_media(services, asset_id)] == [None, "it"]


def test_a_long_master_s_audio_encoded_beside_its_spans_has_the_dub(
        services, origin, master, dub):
    # 2 s spans from 2 s on: this master takes the chunked path (stb_origin.chunked).
    services.settings = services.settings.with_(chunk_above_s=2, span_seconds=2)
    asset_id = str(accept_source(services, master, ".mp4", "film",
                                 master.stat().st_size)["id"])
    _add(services, asset_id, dub, "de", "Deutsch")
    assert pipeline.process(services, asset_id) == "ready"
    assert spans_encoded(services.redis) == {"run": 1}

    audio = _audio_media(services, asset_id)
    assert [(m.language, m.name) for m in audio] == [(None, "Audio"), ("de", "Deutsch")]
    _served(services, origin, asset_id)
    for media in audio:
        _assert_whole(origin, asset_id, media)
