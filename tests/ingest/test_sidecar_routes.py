"""The sidecar track API over real HTTP: what is stored, what is refused, and that
adding or removing a track puts the asset through the pipeline again."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stb_origin.assets import runs
from stb_origin.assets.tracks import Track
from stb_origin.ingest.leftovers import sweep_partial_uploads, upload_dir
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services
from tests.support.http import serve_process
from tests.support.media import make_clip
from tests.support.workers import asset_row

MB = 1024 * 1024
SRT = b"1\r\n00:00:00,500 --> 00:00:01,500\r\nGuten <i>Tag</i>\r\n\r\n"
WEBVTT_OF_SRT = "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nGuten <i>Tag</i>\n"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clip(media: Path) -> Path:
    return make_clip(media / "clip.mp4", seconds=1, size="320x180")


@pytest.fixture(scope="module")
def wav(media: Path) -> Path:
    return make_clip(media / "dub.wav", seconds=1, video=False)


@pytest.fixture
def writer(services: Services) -> str:
    return services.signer.issue(["assets:write", "assets:read"])


@pytest.fixture
def ready_asset(services: Services, clip: Path) -> str:
    """An asset whose run published version "v1" (no media: the API does not look)."""
    asset_id = str(accept_source(services, clip, ".mp4", "clip", clip.stat().st_size)["id"])
    run = runs.claim(services.db, asset_id, 60)
    assert run is not None
    runs.finish(services.db, run, "v1", [], keep_old_s=3600)
    services.queue.empty()
    return asset_id


def _post(api: str, token: str, asset_id: str, content: bytes | Iterator[bytes],
          content_type: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{api}/v1/assets/{asset_id}/tracks", params=params, content=content,
                      headers=headers, timeout=60)


def _tracks(services: Services) -> list[Track]:
    with services.db.session() as session:
        return list(session.query(Track))


def _left_behind(services: Services) -> list[str]:
    """Track files in storage, partial uploads in the upload folder."""
    uploads = upload_dir(services.settings)
    parts = [p.name for p in uploads.iterdir()] if uploads.exists() else []
    return parts + [k for k in services.storage.list_keys("sources/") if "/tracks/" in k]


def test_an_srt_sidecar_is_stored_as_webvtt_and_republishes_the_asset(
        api, services, writer, ready_asset):
    response = _post(api, writer, ready_asset, SRT, "application/x-subrip",
                     kind="subtitles", language="ger", name="Deutsch (forced)", forced="true")

    assert response.status_code == 201, response.text
    track = response.json()
    assert {k: track[k] for k in ("asset", "kind", "language", "name", "forced", "size")} == {
        "asset": ready_asset, "kind": "subtitles", "language": "de",
        "name": "Deutsch (forced)", "forced": True, "size": len(WEBVTT_OF_SRT)}
    key = f"sources/{ready_asset}/tracks/{track['id']}.vtt"
    assert services.storage.get_bytes(key).decode() == WEBVTT_OF_SRT
    assert services.storage.stat(key).content_type == "text/vtt"
    asset = asset_row(services, ready_asset)
    assert (asset.status, asset.version) == ("queued", "v1"), "republished; v1 plays on"
    assert services.queue.job_ids == [f"pipeline-{ready_asset}-1"]
    listed = httpx.get(f"{api}/v1/assets/{ready_asset}/tracks",
                       headers={"Authorization": f"Bearer {writer}"}, timeout=10)
    assert listed.json() == {"items": [track]}


def test_a_broken_srt_is_422_naming_the_line_and_nothing_is_kept(
        api, services, writer, ready_asset):
    broken = SRT + b"2\r\n00:00:02,000 --> 00:00:01,000\r\nzu spaet\r\n"
    response = _post(api, writer, ready_asset, broken, "application/x-subrip",
                     kind="subtitles", language="de")
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_subtitles",
        "message": "line 6: the cue ends (00:00:01.000) before it starts (00:00:02.000)"}
    assert _left_behind(services) == [] and _tracks(services) == []
    assert asset_row(services, ready_asset).status == "ready"
    assert services.queue.job_ids == []


def test_names_are_cleaned_and_never_reach_a_storage_key(api, services, writer, ready_asset,
                                                         wav):
    name = '../../etc/passwd\r\n#EXT-X-ENDLIST\n"quoted"\u202e'
    response = _post(api, writer, ready_asset, wav.read_bytes(), "audio/wav",
                     kind="audio", language="de", name=name)
    assert response.status_code == 201, response.text
    track = response.json()
    assert track["name"] == "../../etc/passwd #EXT-X-ENDLIST 'quoted'"
    assert [k for k in services.storage.list_keys("sources/") if "/tracks/" in k] == [
        f"sources/{ready_asset}/tracks/{track['id']}.wav"]


@pytest.mark.parametrize("content_type, kind, body", [
    ("text/vtt", "audio", b"WEBVTT\n"),
    ("audio/wav", "subtitles", b"RIFF"),
    (None, "audio", b"RIFF"),
    ("video/mp4", "audio", b"\x00\x00\x00\x18ftypisom"),
    ("audio/aac", "audio", None),  # a WAV file, said to be AAC
])
def test_a_wrong_content_type_is_415_and_keeps_nothing(api, services, writer, ready_asset, wav,
                                                       content_type, kind, body):
    response = _post(api, writer, ready_asset, body or wav.read_bytes(), content_type,
                     kind=kind)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert _left_behind(services) == [] and _tracks(services) == []


def test_a_video_file_sent_as_audio_is_422(api, services, writer, ready_asset, clip):
    response = _post(api, writer, ready_asset, clip.read_bytes(), "audio/mp4", kind="audio")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "video_in_audio_track"
    assert _left_behind(services) == [] and _tracks(services) == []


@pytest.mark.parametrize("params, message", [
    ({"kind": "audio", "lang": "de"},
     'unknown field "lang"; allowed: forced, kind, language, name'),
    ({"language": "de"}, 'missing required field "kind"; allowed: forced, kind, language, name'),
    ({"kind": "video"}, 'kind must be "audio" or "subtitles"'),
    ({"kind": "audio", "language": "de\nfr"}, "language must be a BCP-47 language tag"
     " such as en, pt-BR or zh-Hant"),
    ({"kind": "audio", "forced": "true"}, "forced is for subtitles only"),
    ({"kind": "subtitles", "forced": "yes"}, 'forced must be "true" or "false"'),
    ({"kind": "audio", "name": "x" * 201}, "name is longer than 200 bytes"),
])
def test_bad_track_facts_are_400_before_the_body_is_read(api, services, writer, ready_asset,
                                                         wav, params, message):
    response = _post(api, writer, ready_asset, wav.read_bytes(), "audio/wav", **params)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == message
    assert _left_behind(services) == []


def test_an_unknown_asset_is_404_and_reading_needs_its_scope(api, services, writer, wav):
    response = _post(api, writer, "0" * 32, wav.read_bytes(), "audio/wav", kind="audio")
    assert response.status_code == 404
    reader = services.signer.issue(["assets:read"])
    refused = _post(api, reader, "0" * 32, wav.read_bytes(), "audio/wav", kind="audio")
    assert refused.status_code == 403
    assert _left_behind(services) == []


def test_an_upload_over_the_limit_is_413_while_it_streams(services, writer, ready_asset):
    from stb_origin.app import create_app
    from tests.support.http import run_server

    services.settings = services.settings.with_(max_upload_bytes=100_000)
    big = b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * 300_000

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold while the body streams.
        for start in range(0, len(big), 16_384):
            yield big[start:start + 16_384]

    with run_server(create_app(services)) as api:
        declared = _post(api, writer, ready_asset, big, "audio/wav", kind="audio")
        streamed = _post(api, writer, ready_asset, chunks(), "audio/wav", kind="audio")
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert _left_behind(services) == [] and _tracks(services) == []


def test_removing_a_track_deletes_it_and_republishes(api, services, writer, ready_asset, wav):
    track = _post(api, writer, ready_asset, wav.read_bytes(), "audio/wav", kind="audio",
                  language="fr").json()
    run = runs.claim(services.db, ready_asset, 60)  # the republish runs and publishes
    assert run is not None
    runs.finish(services.db, run, "v2", [], keep_old_s=3600)
    services.queue.empty()
    auth = {"Authorization": f"Bearer {writer}"}

    response = httpx.delete(f"{api}/v1/assets/{ready_asset}/tracks/{track['id']}",
                            headers=auth, timeout=10)

    assert response.status_code == 204
    assert _left_behind(services) == [] and _tracks(services) == []
    assert asset_row(services, ready_asset).status == "queued"
    assert services.queue.job_ids == [f"pipeline-{ready_asset}-1"]
    again = httpx.delete(f"{api}/v1/assets/{ready_asset}/tracks/{track['id']}",
                         headers=auth, timeout=10)
    assert again.status_code == 404


def test_deleting_the_asset_removes_its_tracks(api, services, writer, ready_asset, wav):
    for language in ("fr", "it"):
        assert _post(api, writer, ready_asset, wav.read_bytes(), "audio/wav", kind="audio",
                     language=language).status_code == 201
    assert _post(api, writer, ready_asset, SRT, "application/x-subrip",
                 kind="subtitles").status_code == 201
    assert len(_tracks(services)) == 3

    response = httpx.delete(f"{api}/v1/assets/{ready_asset}",
                            headers={"Authorization": f"Bearer {writer}"}, timeout=10)

    assert response.status_code == 204
    assert _tracks(services) == []
    assert list(services.storage.list_keys(f"sources/{ready_asset}/")) == []


def test_a_server_killed_mid_upload_leaves_only_a_part_file_the_sweep_takes(
        services, writer, ready_asset):
    uploads = upload_dir(services.settings)
    with serve_process(services.settings) as (process, base_url):
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"POST /v1/assets/{ready_asset}/tracks?kind=audio HTTP/1.1\r\n"
                         f"Host: 127.0.0.1\r\nAuthorization: Bearer {writer}\r\n"
                         f"Content-Type: audio/wav\r\nContent-Length: {100 * MB}\r\n\r\n"
                         .encode() + b"RIFF\x00\x00\x00\x00WAVE" + b"\0" * (4 * MB))
            deadline = time.monotonic() + 15
            while not any(p.stat().st_size >= 2 * MB for p in uploads.glob("*.part")):
                assert time.monotonic() < deadline, "the upload never reached its file"
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    [killed] = uploads.glob("*.part")
    assert [k for k in services.storage.list_keys("sources/") if "/tracks/" in k] == []
    assert _tracks(services) == [] and asset_row(services, ready_asset).status == "ready"
    # What the sweep at the next start takes (tests/app/test_sweeper.py starts one).
    os.utime(killed, (0, 0))
    assert sweep_partial_uploads(uploads, datetime.now(UTC)).count == 1
    assert _left_behind(services) == []


def test_a_retry_with_the_same_idempotency_key_adds_no_second_track(
        api, services, writer, ready_asset, wav):
    def post(body: bytes, language: str) -> httpx.Response:
        return httpx.post(f"{api}/v1/assets/{ready_asset}/tracks",
                          params={"kind": "audio", "language": language}, content=body,
                          headers={"Authorization": f"Bearer {writer}",
                                   "Content-Type": "audio/wav", "Idempotency-Key": "dub-fr"},
                          timeout=60)

    first = post(wav.read_bytes(), "fr")
    again = post(wav.read_bytes(), "fr")
    other = post(wav.read_bytes(), "it")

    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert [t.id for t in _tracks(services)] == [first.json()["id"]]
    assert _left_behind(services) == [f"sources/{ready_asset}/tracks/{first.json()['id']}.wav"]


@pytest.mark.parametrize("name, content_type", [("dub.aac", "audio/aac"),
                                                ("dub.m4a", "audio/mp4")])
def test_aac_audio_is_taken_as_adts_or_in_mp4(api, services, writer, ready_asset, media,
                                              name, content_type):
    path = make_clip(media / name, seconds=1, video=False)
    response = _post(api, writer, ready_asset, path.read_bytes(), content_type, kind="audio",
                     language="es")
    assert response.status_code == 201, response.text
    key = f"sources/{ready_asset}/tracks/{response.json()['id']}{path.suffix}"
    assert services.storage.get_bytes(key) == path.read_bytes()
