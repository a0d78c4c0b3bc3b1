"""Catch-up decodes to exactly its window; live-to-VOD clips become assets that play
like uploads and outlive the DVR window; bad windows are refused."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import m3u8
import pytest

from stb_origin.accounts import packages
from stb_origin.assets import runs
from stb_origin.assets.records import Asset
from stb_origin.live import clips, retention, urls
from stb_origin.live.index import LiveSegment
from stb_origin.pipeline import process
from stb_origin.queues import enqueue_pipeline
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage.base import ObjectNotFound
from stb_origin.storage.layout import asset_prefix, master_key
from tests.conftest import require_tools
from tests.e2e.player import play
from tests.support import live
from tests.support.workers import CLI, asset_row, kill_tree, logs, spawn

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def _frames_of(url: str, token: str) -> int:
    played = play(url, token, timeout=60)
    assert played.returncode == 0 and not played.errors, played.errors
    return played.video_frames


def test_catch_up_and_a_clip_of_it_decode_to_exactly_the_window_and_the_clip_outlives_it(
        services: Services, settings: Settings, api: str,
        runners: list[subprocess.Popen[bytes]]) -> None:
    require_tools("ffmpeg", "ffprobe")
    port = live.free_udp_port()
    channel_id = live.add_channel(services, [live.udp_source(port)], ladder=[108, 72])
    with live.encoder(port):
        spawn(runners, settings, "runner", [*CLI, "channel-runner"])
        live.wait_for("eight segments listed",
                      lambda: len(live.segments(services, channel_id)) >= 8,
                      timeout=40, explain=lambda: logs(settings))
    kill_tree(runners.pop())  # the channel goes quiet: what is listed stays put

    rows = live.segments(services, channel_id)
    # A window on whole seconds (as a guide's times are), inside what was listed.
    start = rows[1].starts_at.replace(microsecond=0) + timedelta(seconds=1)
    end = rows[-2].starts_at.replace(microsecond=0)
    inside = [r for r in rows if r.starts_at < end
              and r.starts_at + timedelta(seconds=r.duration) > start]
    assert len(inside) >= 3
    window_frames = round(sum(r.duration for r in inside) * live.FPS)
    token = services.signer.issue(["playback"])

    # Catch-up: the segments running at its start to the one running at its end.
    catchup = f"{int(start.timestamp())}-{int(end.timestamp())}"
    catchup_url = f"{api}/hls/{channel_id}/{urls.CATCHUP}{catchup}/108p.m3u8"
    assert _frames_of(catchup_url, token) == window_frames

    # The clip of the same window: queued, in no package (the channel is in none).
    with services.db.session() as session:
        asset, clip = clips.create(session, channel_id, start, end, "Match <b>highlights</b>",
                                   datetime.now(UTC))
        asset_id, first_seq = asset.id, clip.first_seq
        assert (clip.first_seq, clip.last_seq) == (inside[0].seq, inside[-1].seq)
        assert clip.starts_at == inside[0].starts_at
    # Retention keeps what a clip not yet made needs, even past the DVR window.
    far = datetime.now(UTC) + timedelta(days=30)
    assert retention.expire(services, channel_id, dvr_window_s=0, now=far) == first_seq
    assert [r.seq for r in live.segments(services, channel_id)][0] == first_seq

    enqueue_pipeline(services.queue, settings, asset_id)
    spawn(runners, settings, "worker", [*CLI, "worker"])
    live.wait_for("the clip is ready", lambda: asset_row(services, asset_id).status == "ready",
                  timeout=60, explain=lambda: logs(settings))
    made = asset_row(services, asset_id)
    assert made.title == "Match <b>highlights</b>"
    assert made.duration_s == pytest.approx(sum(r.duration for r in inside))
    assert [r["name"] for r in made.renditions or []] == ["108p", "72p"]
    assert made.source == {"clip": {"channel": channel_id, "start": clip_start(inside),
                                    "end": clip_end(inside), "segments": len(inside)}}

    # Made, the clip lets its segments go; the clip is an asset of its own.
    assert retention.expire(services, channel_id, dvr_window_s=0, now=far) == len(rows) - first_seq
    assert not live.segments(services, channel_id)
    assert not any(_stored(services, urls.segment_key(channel_id, "108p", r.epoch, r.seq))
                   for r in inside)

    master_url = f"{api}/hls/{asset_id}/master.m3u8"
    master = m3u8.loads(httpx.get(master_url, timeout=10).text, uri=master_url)
    assert [p.stream_info.resolution[1] for p in master.playlists] == [108, 72]
    assert all(p.uri.endswith("/index.m3u8") for p in master.playlists)
    media_url = master.playlists[0].absolute_uri
    media = m3u8.loads(httpx.get(media_url, timeout=10).text, uri=media_url)
    assert media.is_endlist and media.playlist_type == "vod" and media.media_sequence == 0
    assert [s.uri for s in media.segments] == [f"seg_{i:05d}.ts" for i in range(len(inside))]
    assert all(s.key.absolute_uri.endswith(f"/keys/{asset_id}/{r.key_id}")
               for s, r in zip(media.segments, inside, strict=True))
    # Played like any asset, keys fetched for the clip's id: exactly the window's frames.
    assert _frames_of(media_url, token) == window_frames
    # Bad segment-level bytes would not decode: the copy is the channel's own.
    key_response = httpx.get(media.segments[0].key.absolute_uri,
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert key_response.status_code == 200 and len(key_response.content) == 16


def _stored(services: Services, key: str) -> bool:
    try:
        services.storage.stat(key)
    except ObjectNotFound:
        return False
    return True


def clip_start(rows: list[LiveSegment]) -> str:
    return rows[0].starts_at.astimezone(UTC).isoformat()


def clip_end(rows: list[LiveSegment]) -> str:
    last = rows[-1]
    return (last.starts_at + timedelta(seconds=last.duration)).astimezone(UTC).isoformat()


def _index(services: Services, channel_id: str, count: int, duration: float = 2.0) -> None:
    """Rows for ``count`` segments from T0, as a runner lists them (no objects)."""
    with services.db.session() as session:
        session.add_all(LiveSegment(channel_id=channel_id, seq=n, discontinuity=0, epoch=1,
                                    starts_at=T0 + timedelta(seconds=n * duration),
                                    duration=duration, key_id="k0", iv="00" * 16,
                                    renditions=["72p"]) for n in range(count))


@pytest.mark.parametrize(("start_s", "end_s", "now_s", "message"), [
    (10, 10, 60, "end must be after start"),
    (10, 4, 60, "end must be after start"),
    (0, 12 * 3600 + 1, 13 * 3600, "at most 12 hours"),
    (10, 30, 20, "end is in the future"),
    (100, 120, 200, "retains no segment in that window"),  # after the last segment
    (-50, -10, 200, "retains no segment in that window"),  # before the first
])
def test_a_window_that_cannot_be_clipped_is_refused_in_words(
        services: Services, start_s: int, end_s: int, now_s: int, message: str) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"])
    _index(services, channel_id, 10)
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    with services.db.session() as session, pytest.raises(clips.ClipError, match=message):
        clips.create(session, channel_id, at(start_s), at(end_s), "x", at(now_s))
    with services.db.session() as session:
        assert session.query(Asset).count() == 0


def test_a_clip_of_an_unknown_channel_is_a_lookup_error(services: Services) -> None:
    with services.db.session() as session, pytest.raises(LookupError):
        clips.create(session, "f" * 32, T0, T0 + timedelta(seconds=4), "x",
                     T0 + timedelta(hours=1))


def test_a_window_snaps_to_the_segments_it_overlaps(services: Services) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"])
    _index(services, channel_id, 10)
    with services.db.session() as session:
        _asset, clip = clips.create(session, channel_id, T0 + timedelta(seconds=3),
                                    T0 + timedelta(seconds=8), "x", T0 + timedelta(hours=1))
        assert (clip.first_seq, clip.last_seq) == (1, 3)  # 2-4 s, 4-6 s, 6-8 s
        assert (clip.starts_at, clip.ends_at) == (T0 + timedelta(seconds=2),
                                                  T0 + timedelta(seconds=8))


def test_a_superseded_clip_run_publishes_nothing_and_the_next_run_makes_it(
        services: Services, tmp_path: Path) -> None:
    """A run that lost its asset mid-copy (its worker died, a newer run claimed it)
    stops before any playlist: the asset never points at its half of a version."""
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"], ladder=[72])
    _index(services, channel_id, 4)
    with services.db.session() as session:
        from stb_origin.drm import keystore
        from stb_origin.drm.keys import ContentKey

        keystore.store(session, channel_id, [ContentKey("k0", b"\x01" * 16)], services.envelope)
    for n in range(4):
        services.storage.put_bytes(urls.segment_key(channel_id, "72p", 1, n), b"x" * 188,
                                   "video/mp2t")
    with services.db.session() as session:
        asset, _clip = clips.create(session, channel_id, T0, T0 + timedelta(seconds=8), "x",
                                    T0 + timedelta(hours=1))
        asset_id = asset.id
    run = runs.claim(services.db, asset_id, lease_s=30)
    assert run is not None

    def lost() -> None:
        raise runs.Superseded("a newer run holds the asset")

    with pytest.raises(runs.Superseded):
        clips.make(services, run, tmp_path, lost)
    assert asset_row(services, asset_id).status == "processing"
    stored = list(services.storage.list_keys(asset_prefix(asset_id)))
    assert stored and not any(k.endswith(".m3u8") for k in stored)
    assert master_key(asset_id) not in stored

    runs.put_back(services.db, asset_id)
    assert process(services, asset_id, clips.body_for(services, asset_id)) == "ready"
    assert services.storage.get_bytes(master_key(asset_id)).startswith(b"#EXTM3U")


# --- POST /v1/channels/{channel_id}/clips -----------------------------------------

def _post(api: str, token: str | None, channel_id: str, body: object,
          content_type: str = "application/json") -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{api}/v1/channels/{channel_id}/clips", content=data, headers=headers,
                      timeout=10)


def test_the_api_queues_a_clip_in_the_channel_s_packages(services: Services, api: str) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"])
    with services.db.session() as session:
        packages.create_package(session, "sports")
        packages.set_channel_packages(session, channel_id, ["sports"])
    _index(services, channel_id, 10)
    token = services.signer.issue(["assets:write"])
    response = _post(api, token, channel_id, {
        "start": "2026-12-01T21:00:03+01:00", "end": "2026-12-01T20:00:08Z",
        "title": "<script>alert(1)</script>"})

    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/assets/{body['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert body["status"] == "queued" and body["title"] == "<script>alert(1)</script>"
    assert body["clip"] == {"channel": channel_id, "start": "2026-12-01T20:00:02+00:00",
                            "end": "2026-12-01T20:00:08+00:00"}
    with services.db.session() as session:
        assert packages.read_packages_holding(session, body["id"]) == {"sports"}
    assert services.queue.count == 1  # its run is queued like an upload's


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"start": "2026-12-01T20:00:08Z", "end": "2026-12-01T20:00:02Z", "title": "x"}, 400,
     "end must be after start"),
    ({"start": "2026-12-01T20:00:02", "end": "2026-12-01T20:00:08Z", "title": "x"}, 400,
     "ISO 8601 time with an offset"),
    ({"start": 5, "end": "2026-12-01T20:00:08Z", "title": "x"}, 400, "expected a string"),
    ({"end": "2026-12-01T20:00:08Z", "title": "x"}, 400, "start and end are required"),
    ({"start": "2026-12-01T20:00:02Z", "end": "2026-12-01T20:00:08Z"}, 400, "title"),
    ({"start": "2026-12-01T20:00:02Z", "end": "2026-12-01T20:00:08Z", "title": " "}, 400,
     "title: 1 to 500"),
    ({"start": "2026-12-01T20:00:02Z", "end": "2026-12-01T20:00:08Z", "title": "x" * 501},
     400, "title: 1 to 500"),
    ({"start": "2026-12-01T20:00:02Z", "end": "2026-12-01T20:00:08Z", "title": "x",
      "channel": "y"}, 400, "unknown field"),
    ({"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:10:00Z", "title": "x"}, 400,
     "retains no segment"),
    ({"start": "2026-12-01T20:00:02Z", "end": "2099-01-01T00:00:00Z", "title": "x"}, 400,
     "at most 12 hours"),
    (b"[1, 2]", 400, "a JSON object"),
    (b"{\"start\": ", 400, "not valid JSON"),
])
def test_the_api_refuses_a_bad_clip_request_and_queues_nothing(
        services: Services, api: str, body: object, status: int, message: str) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"])
    _index(services, channel_id, 10)
    response = _post(api, services.signer.issue(["assets:write"]), channel_id, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    with services.db.session() as session:
        assert session.query(Asset).count() == 0
    assert services.queue.count == 0


def test_the_api_wants_a_token_with_assets_write_and_a_real_channel(
        services: Services, api: str) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:1234"])
    _index(services, channel_id, 10)
    body = {"start": "2026-12-01T20:00:02Z", "end": "2026-12-01T20:00:08Z", "title": "x"}
    assert _post(api, None, channel_id, body).status_code == 401
    assert _post(api, "forged.token.value", channel_id, body).status_code == 401
    expired = services.signer.issue(["assets:write"], ttl_s=-60)
    assert _post(api, expired, channel_id, body).status_code == 401
    assert _post(api, services.signer.issue(["playback"]), channel_id, body).status_code == 403
    writer = services.signer.issue(["assets:write"])
    assert _post(api, writer, "f" * 32, body).status_code == 404
    assert _post(api, writer, "..%2F..%2Fetc", body).status_code == 404
    assert _post(api, writer, channel_id, body, content_type="text/plain").status_code == 415
    with services.db.session() as session:
        assert session.query(Asset).count() == 0
