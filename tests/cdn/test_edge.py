"""The CDN config at work: a real nginx in front of the real origin app.

Origin requests are counted where they arrive (tests.cdn.support.RequestLog).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx

from stb_origin.app import create_app
from stb_origin.assets.announce import asset_changed
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.services import Services
from stb_origin.storage import LocalStorage
from tests.catalog.images import make_image
from tests.cdn.conftest import PLAYLIST_MAX_AGE_S
from tests.cdn.nginx import Nginx
from tests.cdn.support import FakeAsset, OriginServer, OutageStorage
from tests.events.clients import next_event, socket, sse, sse_subscribed, subscribed

# nginx counts expiry in whole seconds: a max-age=1 entry goes stale 1-2 s after
# it was stored. The origin keeps its own copy of a playlist for at most
# min(2 s, max-age) on top of that.
EXPIRY_BOUND_S = PLAYLIST_MAX_AGE_S + 1 + min(2, PLAYLIST_MAX_AGE_S) + 1


def fetch_concurrently(base_url: str, path: str, n: int,
                       headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
            responses: list[httpx.Response] = []

            async def one() -> None:
                responses.append(await client.get(path, headers=headers))

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)
            return responses

    return anyio.run(main)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    """Seconds until predicate() held; fails after timeout."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(interval)
    return time.monotonic() - started


# -- collapsing and the cache key ---------------------------------------------------------


def test_cold_requests_collapse_into_one_origin_request(edge: httpx.Client, cdn: Nginx,
                                                        origin: OriginServer,
                                                        asset: FakeAsset) -> None:
    path = asset.url(asset.segment_paths("high")[0])
    # The origin takes its time, so every request arrives while the first is in flight.
    origin.log.delays[path] = 0.3
    cold = fetch_concurrently(cdn.base_url, path, 100)
    assert [r.status_code for r in cold] == [200] * 100
    assert {r.content for r in cold} == {asset.files[asset.segment_paths("high")[0]]}
    assert origin.log.count(path) == 1
    assert Counter(r.headers["x-cache-status"] for r in cold)["MISS"] == 1

    warm = fetch_concurrently(cdn.base_url, path, 100)
    assert [r.headers["x-cache-status"] for r in warm] == ["HIT"] * 100
    assert origin.log.count(path) == 1


def test_cache_key_has_no_tokens_or_tracking_parameters(edge: httpx.Client,
                                                        origin: OriginServer,
                                                        asset: FakeAsset) -> None:
    path = asset.url(asset.segment_paths("low")[0])
    first = edge.get(path, params={"token": "t-one", "utm_source": "box", "session": "1"})
    second = edge.get(path, params={"token": "t-two"})
    third = edge.get(path)
    assert [r.headers["x-cache-status"] for r in (first, second, third)] == ["MISS", "HIT", "HIT"]
    assert first.content == second.content == third.content
    [seen] = origin.log.requests(path)
    assert seen.query == ""  # nothing of the query string reaches the origin


def test_paths_are_normalised_before_the_key_and_the_origin(edge: httpx.Client,
                                                            origin: OriginServer,
                                                            asset: FakeAsset) -> None:
    # An encoded spelling of the same path must not store an answer under the
    # plain path that the origin would give for the spelling (its 404 for '%').
    plain = asset.url("master.m3u8")
    spelled = plain.replace("master", "%6Daster")
    assert edge.get(spelled).status_code == 200
    response = edge.get(plain)
    assert response.status_code == 200 and response.headers["x-cache-status"] == "HIT"
    assert [s.path for s in origin.log.requests()] == [plain]


def test_ranges_and_validators_are_answered_from_the_cache(edge: httpx.Client,
                                                           origin: OriginServer,
                                                           asset: FakeAsset) -> None:
    name = asset.segment_paths("low")[1]
    path, body = asset.url(name), asset.files[name]
    ranged = edge.get(path, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == body[100:200]
    [seen] = origin.log.requests(path)
    assert "range" not in seen.headers  # the edge fetched the whole object once
    etag = ranged.headers["etag"]
    again = edge.get(path, headers={"Range": "bytes=-10"})
    assert again.status_code == 206 and again.content == body[-10:]
    assert edge.get(path, headers={"If-None-Match": etag}).status_code == 304
    head = edge.head(path)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(body))
    assert origin.log.count(path) == 1


def test_missing_objects_are_cached_briefly(edge: httpx.Client, origin: OriginServer,
                                            asset: FakeAsset) -> None:
    path = asset.url("v1/high/seg_99999.m4s")
    first, second = edge.get(path), edge.get(path)
    assert first.status_code == second.status_code == 404
    assert second.headers["x-cache-status"] == "HIT"
    assert first.json()["error"]["code"] == "not_found"
    assert origin.log.count(path) == 1


# -- lifetimes, takedowns, outages --------------------------------------------------------


def test_a_playlist_is_fetched_again_after_its_ttl(edge: httpx.Client, origin: OriginServer,
                                                   asset: FakeAsset) -> None:
    path = asset.url("v1/low/index.m3u8")
    first = edge.get(path)
    assert first.headers["cache-control"] == (
        f"public, max-age={PLAYLIST_MAX_AGE_S}, stale-while-revalidate={PLAYLIST_MAX_AGE_S}")
    assert edge.get(path).headers["x-cache-status"] == "HIT"
    assert origin.log.count(path) == 1

    waited = wait_for(lambda: edge.get(path).headers["x-cache-status"] != "HIT",
                      timeout=PLAYLIST_MAX_AGE_S + 2)
    assert waited >= PLAYLIST_MAX_AGE_S - 0.5
    assert origin.log.count(path) == 2
    renewal = origin.log.requests(path)[-1]
    # Renewed with a conditional request, which the origin answers with a 304.
    # (The box got a weak ETag: the edge gzipped the playlist for it.)
    assert renewal.headers.get("if-none-match") == first.headers["etag"].removeprefix("W/")
    assert renewal.status == 304
    # Segments stay cached for a year: no trip to the origin.
    segment = asset.url(asset.segment_paths("low")[0])
    edge.get(segment)
    assert edge.get(segment).headers["x-cache-status"] == "HIT"


def test_a_takedown_stops_new_playback_within_the_playlist_ttl(
        edge: httpx.Client, cdn: Nginx, services: Services, origin: OriginServer,
        asset: FakeAsset) -> None:
    with services.db.session() as session:
        session.add(Asset(id=asset.asset_id, title="takedown",
                          source_key=f"sources/{asset.asset_id}/source.mp4"))
    master, segment = asset.url("master.m3u8"), asset.url(asset.segment_paths("high")[0])
    assert edge.get(master).status_code == 200
    assert edge.get(segment).status_code == 200
    token = services.signer.issue(["assets:write"])
    deleted = edge.delete(f"/v1/assets/{asset.asset_id}",
                          headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204

    waited = wait_for(lambda: edge.get(master).status_code == 404, timeout=EXPIRY_BOUND_S)
    assert waited <= EXPIRY_BOUND_S
    gone = edge.get(master)
    assert gone.status_code == 404 and gone.headers["x-cache-status"] == "HIT"
    # Segments may stay cached (encrypted, their keys deleted): playlists are the gate.
    assert edge.get(segment).headers["x-cache-status"] == "HIT"
    # Until the operator purges the edge the way the README says.
    subprocess.run(["bash", "-c", 'grep -rlZF "KEY: /hls/$ID/" "$STB_CDN_CACHE_DIR"'
                    " | xargs -0r rm -f"], check=True, timeout=30,
                   env={**os.environ, "ID": asset.asset_id,
                        "STB_CDN_CACHE_DIR": str(cdn.cache_dir)})
    purged = edge.get(segment)
    assert purged.status_code == 404 and purged.headers["x-cache-status"] == "MISS"


def test_origin_down_cached_objects_are_served_stale(edge: httpx.Client, origin: OriginServer,
                                                     asset: FakeAsset) -> None:
    names = ["master.m3u8", "v1/high/index.m3u8", "v1/high/init.mp4",
             *asset.segment_paths("high")[:2]]
    for name in names:
        assert edge.get(asset.url(name)).status_code == 200
    origin.stop()
    time.sleep(PLAYLIST_MAX_AGE_S + 1.1)  # every playlist has expired by now

    for name in names:
        response = edge.get(asset.url(name))
        assert response.status_code == 200, name
        assert response.content == asset.files[name]
        expected = "STALE" if name.endswith(".m3u8") else "HIT"
        assert response.headers["x-cache-status"] == expected, name

    # Nothing cached to fall back on: a JSON 503 that says when to retry, never stored.
    uncached = edge.get(asset.url(asset.segment_paths("low")[0]))
    assert uncached.status_code == 503
    assert uncached.json()["error"]["code"] == "origin_unavailable"
    assert uncached.headers["retry-after"] == "5"
    assert uncached.headers["cache-control"] == "no-store"


def test_storage_down_at_the_origin_cached_playlists_are_served_stale(
        tmp_path: Path, services: Services, asset: FakeAsset) -> None:
    folder = LocalStorage.from_url(services.settings.resolved_storage_url, services.settings)
    storage = OutageStorage(folder.root)
    services.storage = storage  # the same folder, now with a switch
    with OriginServer(create_app(services)) as origin, \
            Nginx(tmp_path / "nginx", origin.upstream) as cdn, \
            httpx.Client(base_url=cdn.base_url, timeout=10) as edge:
        master = asset.url("master.m3u8")
        assert edge.get(master).status_code == 200
        storage.down = True
        time.sleep(PLAYLIST_MAX_AGE_S + 1.1)
        response = edge.get(master)
        assert response.status_code == 200 and response.headers["x-cache-status"] == "STALE"
        assert response.content == asset.files["master.m3u8"]
        assert origin.log.requests(master)[-1].status == 503

        uncached = asset.url("v1/low/index.m3u8")
        for _ in range(2):  # the origin's 503 passes through and is not stored
            failed = edge.get(uncached)
            assert failed.status_code == 503 and failed.headers["retry-after"] == "5"
            assert failed.json()["error"]["code"] == "storage_unavailable"
        assert origin.log.count(uncached) == 2


# -- keys, credentials, headers -----------------------------------------------------------


def test_keys_are_never_cached(edge: httpx.Client, cdn: Nginx, services: Services,
                               origin: OriginServer, asset: FakeAsset) -> None:
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, asset.asset_id, [key], services.envelope)
    path = f"/keys/{asset.asset_id}/{key.key_id}"
    one = services.signer.issue(["playback"], device_id="box-1")
    two = services.signer.issue(["playback"], device_id="box-2")

    answers = [edge.get(path, params={"token": one}), edge.get(path, params={"token": two}),
               edge.get(path, headers={"Authorization": f"Bearer {one}"})]
    for response in answers:
        assert response.status_code == 200 and response.content == key.key
        assert response.headers["cache-control"] == "private, no-store"
        assert "x-cache-status" not in response.headers  # the cache was never consulted
    no_token = edge.get(path)
    assert no_token.status_code == 401 and key.key not in no_token.content

    seen = origin.log.requests(path)
    assert len(seen) == 4  # every request reached the origin
    assert seen[0].query == f"token={one}" and seen[1].query == f"token={two}"
    assert seen[2].headers["authorization"] == f"Bearer {one}"

    stored = [p.read_bytes() for p in cdn.cache_dir.rglob("*") if p.is_file()]
    assert not any(key.key in data for data in stored)
    time.sleep(0.2)  # nginx writes the access log after the answer
    log = cdn.access_log.read_text()
    assert path in log
    for secret in (one, two, "token="):
        assert secret not in log
        assert secret not in cdn.log_tail(1000)


def test_requests_with_authorization_are_not_cached(edge: httpx.Client, origin: OriginServer,
                                                    asset: FakeAsset) -> None:
    path = asset.url(asset.segment_paths("low")[2])
    auth = {"Authorization": "Bearer someone"}
    assert edge.get(path, headers=auth).headers["x-cache-status"] == "BYPASS"
    assert edge.get(path, headers=auth).headers["x-cache-status"] == "BYPASS"
    # Nothing fetched for them was stored for anyone else.
    assert edge.get(path).headers["x-cache-status"] == "MISS"
    assert edge.get(path).headers["x-cache-status"] == "HIT"
    assert edge.get(path, headers=auth).headers["x-cache-status"] == "BYPASS"
    assert origin.log.count(path) == 4


def test_request_ids_reach_the_origin_and_come_back(edge: httpx.Client, origin: OriginServer,
                                                    asset: FakeAsset) -> None:
    path = asset.url("v1/low/init.mp4")
    mine = edge.get(path, headers={"X-Request-ID": "box-42.req-7"})
    assert mine.headers["x-request-id"] == "box-42.req-7"
    assert origin.log.requests(path)[0].headers["x-request-id"] == "box-42.req-7"
    # A cached answer carries this request's id, not the one that filled the cache.
    made = edge.get(path, headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-cache-status"] == "HIT"
    assert made.headers["x-request-id"] not in ("box-42.req-7", "bad id with spaces")
    assert len(made.headers["x-request-id"]) == 32
    assert len(made.headers.get_list("x-request-id")) == 1


def test_origin_secret_header_only_when_configured(tmp_path: Path, origin: OriginServer,
                                                   asset: FakeAsset) -> None:
    forged = {"X-Origin-Secret": "forged"}
    with Nginx(tmp_path / "with", origin.upstream, origin_secret="s3cret") as cdn:
        httpx.get(cdn.base_url + asset.url("master.m3u8"), headers=forged)
    with Nginx(tmp_path / "without", origin.upstream) as cdn:
        httpx.get(cdn.base_url + asset.url("v1/low/index.m3u8"), headers=forged)
    with_secret, without = origin.log.requests()
    assert with_secret.headers["x-origin-secret"] == "s3cret"
    assert "x-origin-secret" not in without.headers


def test_playlists_are_gzipped_segments_are_not(edge: httpx.Client, asset: FakeAsset) -> None:
    for _ in range(2):  # fresh from the origin, then from the cache
        playlist = edge.get(asset.url("master.m3u8"), headers={"Accept-Encoding": "gzip"})
        assert playlist.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in playlist.headers["vary"].lower()
        assert playlist.content == asset.files["master.m3u8"]  # httpx decompressed it
        raw = edge.get(asset.url("master.m3u8"), headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers
        assert raw.content == asset.files["master.m3u8"]
    name = asset.segment_paths("high")[0]
    segment = edge.get(asset.url(name), headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in segment.headers and segment.content == asset.files[name]


# -- the API through the edge -------------------------------------------------------------


def test_uploads_stream_through_and_the_api_is_never_cached(edge: httpx.Client,
                                                            services: Services,
                                                            origin: OriginServer) -> None:
    token = services.signer.issue(["assets:write", "assets:read"])
    auth = {"Authorization": f"Bearer {token}"}
    # Over nginx's default 1 MB body limit; an MP4 header so the origin accepts it.
    body = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * (3 * 1024 * 1024)
    created = edge.post("/v1/assets", headers=auth,
                        files={"file": ("clip.mp4", body, "video/mp4")}, data={"title": "x"})
    assert created.status_code == 202, created.text
    asset_id = created.json()["id"]
    assert services.storage.stat(f"sources/{asset_id}/source.mp4").size == len(body)

    for _ in range(2):
        status = edge.get(f"/v1/assets/{asset_id}", headers=auth)
        assert status.status_code == 200 and "x-cache-status" not in status.headers
        health = edge.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert origin.log.count(f"/v1/assets/{asset_id}") == 2
    assert origin.log.count("/healthz") == 2


def test_other_paths_are_a_json_404_at_the_edge(edge: httpx.Client,
                                                origin: OriginServer) -> None:
    response = edge.get("/etc/passwd")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert origin.log.requests() == []


def test_artwork_is_kept_at_the_edge_and_graphql_passes_through(
        edge: httpx.Client, services: Services, origin: OriginServer, tmp_path: Path) -> None:
    editor = {"Authorization": "Bearer " + services.signer.issue(["assets:write"])}
    title = edge.post("/v1/catalog/titles", headers=editor,
                      json={"kind": "movie", "name": "Poster test"}).json()
    image = make_image(tmp_path / "poster.jpg", 640, 360)
    stored = edge.put(f"/v1/catalog/titles/{title['id']}/artwork/poster", content=image,
                      headers={**editor, "Content-Type": "image/jpeg"})
    assert stored.status_code == 200, stored.text
    url = stored.json()["artwork"]["poster"][0]["url"]
    path = "/" + url.split("/", 3)[3]
    first, second = edge.get(path + "?utm=x"), edge.get(path)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and first.content[:2] == b"\xff\xd8"
    assert second.headers["x-cache-status"] == "HIT"
    assert "immutable" in second.headers["cache-control"]
    assert origin.log.count(path) == 1
    box = {"Authorization": "Bearer " + services.signer.issue(["playback"])}
    for _ in range(2):
        answer = edge.post("/graphql", headers=box, json={"query": "{ __typename }"})
        assert answer.json() == {"data": {"__typename": "Query"}}
        assert "x-cache-status" not in answer.headers
    assert origin.log.count("/graphql") == 2


def test_events_pass_the_edge_as_a_websocket_or_an_unbuffered_stream(
        cdn: Nginx, services: Services) -> None:
    editor = services.signer.issue(["assets:read"], subject="operator")
    asset_id = new_id()
    query = f"topics=assets:{asset_id}"
    with socket(cdn.base_url, editor, query=query) as ws, \
            sse(cdn.base_url, editor, query=query) as stream:
        subscribed(ws)
        sse_subscribed(stream)
        asset_changed(services.redis, asset_id, "processing", 10)
        heard = {"asset": asset_id, "status": "processing", "progress": 10, "error": None}
        assert next_event(ws)["data"] == heard
        # Within the client's wait: a buffered stream would hold it back.
        topic, event = stream.next_data()
        assert (topic, event["data"]) == ("assets", heard)
        assert stream.response.headers["x-request-id"]


def test_an_upgrade_is_passed_on_for_events_only(edge: httpx.Client, origin: OriginServer,
                                                 asset: FakeAsset) -> None:
    path = asset.url("master.m3u8")
    answer = edge.get(path, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert answer.status_code == 200
    [seen] = origin.log.requests(path)
    assert "upgrade" not in seen.headers
    assert seen.headers.get("connection", "").lower() != "upgrade"
