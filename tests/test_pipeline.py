"""The flow of one asset, in-process against real Redis, ffmpeg, storage and SQLite."""

from __future__ import annotations

import dataclasses
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import m3u8
import pytest
from rq import SimpleWorker

from stb_origin import pipeline
from stb_origin.assets.records import Asset
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore
from stb_origin.ingest.service import accept_source
from stb_origin.reconciler import Reconciler
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.storage import Storage, StorageUnavailable
from stb_origin.workers import jobs
from tests.packager import support
from tests.packager.test_subtitles import first_video_pts
from tests.support.captions import make_captions_clip, read_captions
from tests.support.media import (
    Subtitle,
    Track,
    make_audio_tracks_clip,
    make_clip,
    make_content_clip,
    make_hdr_clip,
    make_subtitles_clip,
    make_subtitles_only,
)
from tests.support.vtt import shown_cues


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def good(media: Path) -> Path:
    return make_clip(media / "good.mp4", seconds=3, size="640x360")


def _ingest(services: Services, path: Path) -> str:
    return str(accept_source(services, path, path.suffix, path.stem, path.stat().st_size)["id"])


def _asset(services: Services, asset_id: str) -> Asset:
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset


def _published(storage: Storage, asset_id: str) -> list[str]:
    return list(storage.list_keys(f"hls/{asset_id}/"))


def _key_ids(services: Services, asset_id: str) -> set[str]:
    with services.db.session() as session:
        return set(keystore.key_ids(session, asset_id))


def test_ready_asset_has_renditions_and_its_keys(services, good):
    asset_id = _ingest(services, good)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert (asset.status, asset.progress, asset.error_code) == ("ready", 100, None)
    assert [(r["type"], r["name"]) for r in asset.renditions or []] == [
        ("video", "360p"), ("video", "234p"), ("audio", "audio0_aac")]
    assert asset.source and asset.source["width"] == 640
    master = m3u8.loads(services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode())
    assert all(p.uri.startswith(f"{asset.version}/") for p in master.playlists)
    media = m3u8.loads(services.storage.get_bytes(
        f"hls/{asset_id}/{master.playlists[0].uri}").decode())
    used = {key.uri.rsplit("/", 1)[1] for key in media.keys if key}
    assert used == _key_ids(services, asset_id)
    assert not list(services.settings.work_dir.glob(f"{asset_id}-*")), "work files cleaned up"
    # A strip of thumbnails from the smallest trick-play track: 3 s, one a segment.
    strip = asset.to_json()["thumbnails"]
    assert strip == {"url": f"/hls/{asset_id}/{asset.version}/thumbs.jpg", "count": 2,
                     "interval_s": pytest.approx(1.5, abs=0.5), "width": 160, "height": 90}
    info = services.storage.stat(strip["url"].removeprefix("/"))
    assert info.content_type == "image/jpeg"
    local = services.storage.local_path(info.key)
    assert local is not None and support.probe_size(local) == (320, 90)


def test_every_audio_track_is_a_rendition_of_the_ready_asset(services, media):
    master = make_audio_tracks_clip(media / "tracks.mkv", [
        Track(language="eng", title="English"),
        Track(language="fra", title="Français", default=True),
        Track(language="deu", title="Deutsch", channels=1),
        Track(language="eng", title="English 5.1", channels=6),
        Track(title='Say "hi"\nthen\r\nleave'),
    ], seconds=3)
    asset_id = _ingest(services, master)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    audio = [r for r in asset.renditions or [] if r["type"] == "audio"]
    assert [(a["name"], a["group"], a["language"], a["label"], a["channels"], a["default"],
             a["codecs"]) for a in audio] == [
        ("audio0_aac", "audio-aac", "en", "English", 2, False, "mp4a.40.2"),
        ("audio1_aac", "audio-aac", "fr", "Français", 2, True, "mp4a.40.2"),
        ("audio2_aac", "audio-aac", "de", "Deutsch", 1, False, "mp4a.40.2"),
        ("audio3_aac", "audio-aac", "en", "English 5.1", 2, False, "mp4a.40.2"),
        ("audio4_aac", "audio-aac", None, "Say 'hi' then leave", 2, False, "mp4a.40.2"),
        ("audio3_ec3", "audio-ec3", "en", "English 5.1", 6, True, "ec-3"),
    ]
    assert all(a["bandwidth"] > 0 and a["segment_count"] > 0 for a in audio)

    text = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    master_playlist = m3u8.loads(text)
    assert [m.uri for m in master_playlist.media] == [
        f"{asset.version}/{a['name']}/index.m3u8" for a in audio]
    assert 'NAME="Say \'hi\' then leave"' in text
    assert {p.stream_info.audio for p in master_playlist.playlists} == {"audio-aac", "audio-ec3"}
    for media_entry in master_playlist.media:
        key = f"hls/{asset_id}/{media_entry.uri}"
        media_playlist = m3u8.loads(services.storage.get_bytes(key).decode())
        assert {k.uri.rsplit("/", 1)[1] for k in media_playlist.keys if k} == _key_ids(
            services, asset_id)


@pytest.fixture(scope="module")
def cartoon(media: Path) -> Path:
    # A mezzanine-like bit rate, so the source's own caps nothing.
    return make_content_clip(media / "cartoon.mp4", "cartoon", seconds=3, size="640x360",
                             bitrate="3M")


def _top_average_bandwidth(services: Services, asset_id: str) -> int:
    return max(r["average_bandwidth"] for r in _asset(services, asset_id).renditions or [])


def test_a_simple_title_gets_a_cheaper_ladder_that_plays_to_the_end(services, cartoon):
    asset_id = _ingest(services, cartoon)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert asset.source is not None
    assert asset.source["complexity"]["bits_per_pixel"] > 0
    # Under the caps of 365 and 145 kb/s (ladder.DEFAULT_RUNGS): flat colour needs less.
    assert all(r["bandwidth"] < 0.8 * 365_000 for r in asset.renditions or []
               if r["type"] == "video")
    master_text = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    variants = m3u8.loads(master_text).playlists
    assert {p.stream_info.resolution for p in variants} == {(640, 360), (416, 234)}
    with support.serve(services.settings.data_dir / "storage") as server, \
            services.db.session() as session:
        for key_id in _key_ids(services, asset_id):
            key = keystore.load(session, asset_id, key_id, services.envelope)
            assert key is not None
            server.keys[f"/keys/{asset_id}/{key_id}"] = key
        for variant in variants:
            frames = support.decode(f"{server.base}/hls/{asset_id}/{variant.uri}")
            assert frames == {0: 3 * 30}, variant.uri


def test_per_title_off_gives_every_title_the_caps(services, settings: Settings, cartoon):
    on = _ingest(services, cartoon)
    assert pipeline.process(services, on) == "ready"
    fixed = build_services(settings.with_(per_title=False))
    try:
        off = _ingest(fixed, cartoon)
        assert pipeline.process(fixed, off) == "ready"
        source = _asset(fixed, off).source
        assert source is not None and source["complexity"] is None
        # The same title costs more bits under the fixed caps.
        assert _top_average_bandwidth(fixed, off) > _top_average_bandwidth(services, on)
    finally:
        fixed.close()


def test_every_audio_rendition_records_its_loudness_and_gain(services, media):
    master = make_audio_tracks_clip(media / "levels.mkv", [
        Track(language="eng", channels=6), Track(language="fra", channels=1)], seconds=3)
    asset_id = _ingest(services, master)
    assert pipeline.process(services, asset_id) == "ready"
    audio = [r for r in _asset(services, asset_id).renditions or [] if r["type"] == "audio"]
    assert [a["name"] for a in audio] == ["audio0_aac", "audio1_aac", "audio0_ec3"]
    for a in audio:
        loudness = a["loudness"]
        assert (loudness["target_i"], loudness["target_tp"]) == (-23.0, -1.0)
        assert loudness["gain_db"] == pytest.approx(-23.0 - loudness["input_i"], abs=0.01)
        assert loudness["linear"] is True


def test_normalisation_turned_off_records_no_loudness(services, media):
    services = dataclasses.replace(
        services, settings=services.settings.with_(loudness_normalisation=False))
    asset_id = _ingest(services, make_clip(media / "plain.mp4", seconds=2, size="320x180"))
    assert pipeline.process(services, asset_id) == "ready"
    audio = [r for r in _asset(services, asset_id).renditions or [] if r["type"] == "audio"]
    assert [a["loudness"] for a in audio] == [None]


@pytest.mark.parametrize("name, rate", [("song.mp3", 44_100), ("speech.wav", 48_000)])
def test_audio_only_master_becomes_an_audio_only_stream(services, media, name, rate):
    master = make_clip(media / name, seconds=5, video=False, audio_sample_rate=rate)
    asset_id = _ingest(services, master)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert [(r["type"], r["name"], r["codecs"]) for r in asset.renditions or []] == [
        ("audio", "audio0_aac", "mp4a.40.2")]
    assert asset.source and asset.source["has_video"] is False
    text = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    master_playlist = m3u8.loads(text)
    (variant,) = master_playlist.playlists
    assert variant.uri == f"{asset.version}/audio0_aac/index.m3u8"
    assert (variant.stream_info.codecs, variant.stream_info.resolution) == ("mp4a.40.2", None)
    assert master_playlist.iframe_playlists == []
    assert asset.thumbnails is None

    # Played from what was published, with the keys the key server would hand out.
    keys: dict[str, bytes] = {}
    with services.db.session() as session:
        for key_id in keystore.key_ids(session, asset_id):
            key = keystore.load(session, asset_id, key_id, services.envelope)
            assert key is not None
            keys[f"/keys/{asset_id}/{key_id}"] = key
    source_samples, _, _ = support.decoded_audio(str(master))
    with support.serve(services.settings.data_dir / "storage") as server:
        server.keys.update(keys)
        samples, channels, codec = support.decoded_audio(
            f"{server.base}/hls/{asset_id}/master.m3u8")
        assert set(keys) <= set(server.requests)
    assert (channels, codec) == (2, "aac")
    assert samples == support.encoded_samples(
        "aac", max(source_samples, round(asset.source["duration_s"] * rate)))


def test_a_pq_master_is_published_as_hevc_pq_beside_tone_mapped_h264(services, media):
    # Every rung gets HEVC: the 320x180 master has one small rung.
    services.settings = services.settings.with_(hevc_min_height=0)
    asset_id = _ingest(services, make_hdr_clip(media / "pq.mp4", "smpte2084", seconds=2))
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert asset.source and asset.source["colour"]["transfer"] == "smpte2084"
    video = [(r["name"], r["video_range"], r["codecs"].partition(".")[0])
             for r in asset.renditions or [] if r["type"] == "video"]
    assert video == [("180p", "SDR", "avc1"), ("180p-hevc", "PQ", "hvc1")]
    master = m3u8.loads(services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode())
    assert [(p.uri.split("/")[1], p.stream_info.video_range) for p in master.playlists] == [
        ("180p", "SDR"), ("180p-hevc", "PQ")]


@contextmanager
def _served(services: Services, asset_id: str, root: Path) -> Iterator[support.HlsServer]:
    """The published asset copied from storage and served over HTTP with its keys,
    at the paths its playlists name (key URIs are /keys/{asset}/{key id})."""
    for key in services.storage.list_keys(f"hls/{asset_id}/"):
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(services.storage.get_bytes(key))
    with services.db.session() as session:
        keys = {f"/keys/{asset_id}/{key_id}": keystore.load(session, asset_id, key_id,
                                                              services.envelope)
                for key_id in keystore.key_ids(session, asset_id)}
    with support.serve(root) as server:
        server.keys.update({uri: key for uri, key in keys.items() if key is not None})
        yield server


SUBTITLE_CUES = ((0.5, 1.5, "Hello & you"), (1.8, 2.6, "Across\nthe boundary"))


def test_text_subtitles_are_renditions_and_pictures_a_warning(services, media, tmp_path):
    master = make_subtitles_clip(media / "subs.mkv", [
        Subtitle(SUBTITLE_CUES, language="eng", title="English"),
        Subtitle(SUBTITLE_CUES, language="fre", forced=True, fmt="ass"),
        Subtitle(SUBTITLE_CUES, language="ger", fmt="pgs"),
        Subtitle(SUBTITLE_CUES, language="spa"),
    ], seconds=3, audio_codec="flac")
    asset_id = _ingest(services, master)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert asset.source is not None
    assert [(t["index"], t["codec"], t["kind"], t["language"], t["forced"])
            for t in asset.source["subtitle_tracks"]] == [
        (2, "subrip", "text", "eng", False), (3, "ass", "text", "fre", True),
        (4, "hdmv_pgs_subtitle", "image", "ger", False), (5, "subrip", "text", "spa", False)]
    assert asset.source["warnings"] == [
        "subtitle track 4 (hdmv_pgs_subtitle) is made of pictures, which WebVTT cannot carry:"
        " left out"]
    subtitles = [r for r in asset.renditions or [] if r["type"] == "subtitles"]
    assert [(r["name"], r["language"], r["label"], r["forced"], r["cue_count"])
            for r in subtitles] == [("subs0", "en", "English", False, 2),
                                    ("subs1", "fr", "French (forced)", True, 2),
                                    ("subs2", "es", "Spanish", False, 2)]

    with _served(services, asset_id, tmp_path) as server:
        master_url = f"{server.base}/hls/{asset_id}/master.m3u8"
        playlist = m3u8.load(master_url)
        media = [m for m in playlist.media if m.type == "SUBTITLES"]
        assert [(m.group_id, m.language, m.forced, m.uri) for m in media] == [
            ("subs", r["language"], "YES" if r["forced"] else "NO",
             f"{asset.version}/{r['name']}/index.m3u8") for r in subtitles]
        assert {(p.stream_info.subtitles, p.stream_info.closed_captions)
                for p in playlist.playlists} == {("subs", "NONE")}
        for variant in playlist.playlists:
            assert support.decode(f"{server.base}/hls/{asset_id}/{variant.uri}")[0] == 3 * 25
        video = m3u8.load(f"{server.base}/hls/{asset_id}/{playlist.playlists[0].uri}")
        pts = first_video_pts(f"{server.base}/hls/{asset_id}/{playlist.playlists[0].uri}")
        for entry in media:
            rendition = m3u8.load(f"{server.base}/hls/{asset_id}/{entry.uri}")
            assert [s.duration for s in rendition.segments] == [
                s.duration for s in video.segments]
            shown = {(round(c.start, 3), round(c.end, 3), c.text)
                     for s in rendition.segments
                     for c in shown_cues(_get(f"{server.base}/hls/{asset_id}/"
                                              f"{entry.uri.rsplit('/', 1)[0]}/{s.uri}"), pts)}
            assert shown == set(SUBTITLE_CUES), entry.uri


def test_captions_in_the_video_are_kept_and_declared(services, media, tmp_path):
    master = make_captions_clip(media / "cc.mp4", [(0.5, 1.5, "HELLO"), (2.0, 2.5, "BYE")],
                                seconds=3, size="640x360")
    asset_id = _ingest(services, master)
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert asset.source is not None and asset.source["closed_captions"] is True
    assert asset.source["warnings"] == []
    with _served(services, asset_id, tmp_path) as server:
        playlist = m3u8.load(f"{server.base}/hls/{asset_id}/master.m3u8")
        assert [(m.type, m.group_id, m.instream_id) for m in playlist.media] == [
            ("AUDIO", "audio-aac", None), ("CLOSED-CAPTIONS", "cc", "CC1")]
        assert len(playlist.playlists) == 2
        for variant in playlist.playlists:
            assert variant.stream_info.closed_captions == '"cc"'
            url = f"{server.base}/hls/{asset_id}/{variant.uri}"
            assert support.decode(url)[0] == 3 * 30
            assert read_captions(url) == [(0.5, 1.5, "HELLO"), (2.0, 2.5, "BYE")]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode("utf-8"))


def _truncated(media: Path, good: Path) -> Path:
    path = media / "truncated.mp4"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


@pytest.mark.parametrize("make, code", [
    (_truncated, "invalid_media"),
    (lambda media, good: make_clip(media / "zero.mp4", seconds=1, audio=False,
                                   extra_output_args=["-frames:v", "1"]), "too_short"),
    (lambda media, good: make_subtitles_only(media / "subtitles.mkv"), "no_media"),
    (lambda media, good: _write(media / "fake.mp4", b"\x00\x00\x00\x18ftypisom" + b"x" * 4000),
     "invalid_media"),
])
def test_bad_media_fails_with_a_reason_and_publishes_nothing(services, media, good, make, code):
    asset_id = _ingest(services, make(media, good))
    assert pipeline.process(services, asset_id) == "failed"
    asset = _asset(services, asset_id)
    assert asset.status == "failed"
    assert asset.error_code == code
    assert asset.error_message
    assert _published(services.storage, asset_id) == []
    assert _key_ids(services, asset_id) == set()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _versions(storage: Storage, asset_id: str) -> set[str]:
    return {key.split("/")[2] for key in _published(storage, asset_id) if key.count("/") > 2}


def test_a_second_job_for_a_ready_asset_changes_nothing(services, good):
    asset_id = _ingest(services, good)
    assert pipeline.process(services, asset_id) == "ready"
    before = _asset(services, asset_id)
    assert pipeline.process(services, asset_id) == "skipped"
    after = _asset(services, asset_id)
    assert (after.version, after.run, after.status) == (before.version, before.run, "ready")


def test_a_rerun_keeps_the_old_version_playable_until_it_is_retired(services, good):
    asset_id = _ingest(services, good)
    pipeline.process(services, asset_id)
    first = _asset(services, asset_id).version
    with services.db.session() as session:  # what a re-run request does
        session.get(Asset, asset_id).status = "queued"  # type: ignore[union-attr]
    assert pipeline.process(services, asset_id) == "ready"
    second = _asset(services, asset_id)
    assert second.version != first
    # Players that fetched the old playlists just before the switch still play them.
    assert _versions(services.storage, asset_id) == {first, second.version}
    assert len(_key_ids(services, asset_id)) == 2
    assert second.prune_after is not None

    reconciler = Reconciler(services)
    reconciler.run_once(now=second.prune_after - timedelta(seconds=1))
    assert _versions(services.storage, asset_id) == {first, second.version}
    assert reconciler.run_once(now=second.prune_after).pruned == 1
    assert _versions(services.storage, asset_id) == {second.version}
    assert len(_key_ids(services, asset_id)) == 1, "only the live version's keys remain"
    master = services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode()
    assert f"{second.version}/" in master and f"{first}/" not in master


class FlakyStorage:
    """Real storage that goes down after a number of writes."""

    def __init__(self, inner: Storage, writes_before_failure: int) -> None:
        self.inner = inner
        self.writes_left = writes_before_failure

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def _write(self) -> None:
        if self.writes_left <= 0:
            raise StorageUnavailable("injected outage")
        self.writes_left -= 1

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self._write()
        self.inner.put_file(key, path, content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write()
        self.inner.put_bytes(key, data, content_type)


def test_half_published_asset_is_never_ready_and_a_retry_repairs_it(services, good):
    asset_id = _ingest(services, good)
    healthy = services.storage
    services.storage = FlakyStorage(healthy, writes_before_failure=5)  # type: ignore[assignment]
    assert pipeline.process(services, asset_id) == "queued"
    asset = _asset(services, asset_id)
    assert (asset.status, asset.attempt, asset.error_code) == ("queued", 2, "storage_unavailable")
    assert "storage was unavailable" in (asset.error_message or "")
    assert asset.next_attempt_at is not None and asset.next_attempt_at > utcnow()
    assert f"hls/{asset_id}/master.m3u8" not in _published(healthy, asset_id)

    services.storage = healthy
    assert pipeline.process(services, asset_id) == "ready"
    asset = _asset(services, asset_id)
    assert (asset.error_code, asset.next_attempt_at) == (None, None)
    assert asset.prune_after is not None
    Reconciler(services).run_once(now=asset.prune_after)
    assert _versions(healthy, asset_id) == {asset.version}, "the failed attempt's objects go"


def test_asset_deleted_while_processing_takes_its_output_down(services, good):
    asset_id = _ingest(services, good)
    real_publish = pipeline.publish

    def publish_then_delete(storage, asset, version, out_dir):  # type: ignore[no-untyped-def]
        real_publish(storage, asset, version, out_dir)
        with services.db.session() as session:
            session.delete(session.get(Asset, asset))

    pipeline.publish = publish_then_delete  # type: ignore[assignment]
    try:
        assert pipeline.process(services, asset_id) == "deleted"
    finally:
        pipeline.publish = real_publish  # type: ignore[assignment]
    assert _published(services.storage, asset_id) == []
    assert _key_ids(services, asset_id) == set()


def test_rq_worker_runs_the_job(services, good, worker_env):
    asset_id = _ingest(services, good)
    SimpleWorker([services.queue], connection=services.redis).work(burst=True)
    assert _asset(services, asset_id).status == "ready"


def test_a_job_that_keeps_failing_leaves_the_asset_failed_with_the_reason(services, good,
                                                                         worker_env):
    jobs.use_settings(services.settings.with_(job_retries=0))  # what the worker runs with
    asset_id = _ingest(services, good)
    services.storage.delete_prefix(f"sources/{asset_id}/")  # the source is gone
    SimpleWorker([services.queue], connection=services.redis).work(burst=True)
    asset = _asset(services, asset_id)
    assert asset.status == "failed"
    assert asset.error_code == "internal_error"
    assert "ObjectNotFound" in (asset.error_message or "")


def test_a_failed_attempt_with_retries_left_is_not_final(services, good, worker_env):
    asset_id = _ingest(services, good)
    services.storage.delete_prefix(f"sources/{asset_id}/")
    SimpleWorker([services.queue], connection=services.redis).work(burst=True)
    asset = _asset(services, asset_id)
    assert (asset.status, asset.attempt) == ("queued", 2)
    assert asset.next_attempt_at is not None
    body = asset.to_json()
    assert body["attempt"] == 2 and body["next_attempt_at"] == asset.next_attempt_at.isoformat()
    assert "ObjectNotFound" in body["error"]["message"], "why the last attempt failed"
