"""Signed playback URLs and filtered masters through a real nginx (deploy/cdn/urlsign.js)
in front of the real origin, which wants the CDN's X-Origin-Secret.

Origin requests are counted where they arrive (tests.cdn.support.RequestLog): a
URL the edge refuses must not reach it at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest

from stb_origin.db.types import new_id
from stb_origin.origin.urlsign import UrlSigner
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.cdn.nginx import Nginx
from tests.cdn.support import M3U8, FakeAsset, OriginServer
from tests.origin.test_masters import MASTER as LADDER_MASTER

URL_SECRETS = ("url-new", "url-old")
ORIGIN_SECRETS = ("origin-new", "origin-old")
SIGNER, OLD_SIGNER = UrlSigner(URL_SECRETS), UrlSigner(URL_SECRETS[1:])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(url_signing_secrets=URL_SECRETS, origin_secrets=ORIGIN_SECRETS)


@pytest.fixture
def cdn(tmp_path: Path, origin: OriginServer) -> Iterator[Nginx]:
    with Nginx(tmp_path / "nginx", origin.upstream, origin_secret=ORIGIN_SECRETS[0],
               url_signing_secrets=",".join(URL_SECRETS)) as server:
        yield server


@pytest.fixture
def ladder(services: Services) -> str:
    """An asset whose master has a real ladder (360p to 2160p); its id."""
    asset_id = new_id()
    services.storage.put_bytes(f"hls/{asset_id}/master.m3u8", LADDER_MASTER, M3U8)
    return asset_id


def _signed(path: str, signer: UrlSigner = SIGNER, ttl_s: int = 300) -> str:
    return signer.sign(path, int(time.time()) + ttl_s)


def test_a_signed_url_plays_through_the_cdn(edge: httpx.Client, cdn: Nginx,
                                            origin: OriginServer, asset: FakeAsset) -> None:
    master_url = _signed(asset.url("master.m3u8"))
    master = edge.get(master_url)
    assert master.status_code == 200 and master.content == asset.files["master.m3u8"]
    # Everything below is reached through the playlists' relative URIs, under the token.
    variant_url = httpx.URL(master_url).join(m3u8.loads(master.text).playlists[0].uri)
    media = edge.get(variant_url)
    assert media.status_code == 200
    playlist = m3u8.loads(media.text)
    for uri in [playlist.segments[0].init_section.uri, playlist.segments[0].uri]:
        response = edge.get(variant_url.join(uri))
        name = f"v1/low/{uri}"
        assert response.status_code == 200 and response.content == asset.files[name], name
    seen = origin.log.requests()
    assert len(seen) == 4
    assert all(s.path.startswith("/hls/st=") for s in seen)  # the origin checks it too
    assert {s.headers["x-origin-secret"] for s in seen} == {ORIGIN_SECRETS[0]}
    time.sleep(0.2)  # nginx writes the access log after the answer
    log = cdn.access_log.read_text()
    assert f'"uri":"{asset.url("master.m3u8")}"' in log
    assert "hmac=" not in log  # a token opens the asset: it stays out of the log


def test_refused_urls_are_answered_by_nginx_alone(edge: httpx.Client, origin: OriginServer,
                                                  asset: FakeAsset) -> None:
    path = asset.url(asset.segment_paths("low")[0])
    good = _signed(path)
    token = good.split("/")[2]
    other = new_id()
    refused = {
        "unsigned": path,
        "expired": _signed(path, ttl_s=-5),
        "forged": good.replace(token.split("~")[0], f"st=exp={int(time.time()) + 9999}"),
        "foreign secret": _signed(path, UrlSigner(("guessed",))),
        "wrong prefix": f"/hls/{token}/{other}/master.m3u8",
        "malformed": f"/hls/st=exp=1~acl={asset.asset_id}/{path.removeprefix('/hls/')}",
    }
    # Cached already, through a valid URL: the token is checked before the cache.
    assert edge.get(good).status_code == 200
    before = len(origin.log.requests())
    for case, url in refused.items():
        response = edge.get(url)
        assert response.status_code == 403, case
        assert response.json()["error"]["code"] == "forbidden"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["access-control-allow-origin"] == "*"
        assert asset.files[asset.segment_paths("low")[0]] not in response.content
    assert len(origin.log.requests()) == before


def test_the_cache_is_shared_by_every_valid_token(edge: httpx.Client, origin: OriginServer,
                                                  asset: FakeAsset) -> None:
    path = asset.url(asset.segment_paths("high")[0])
    tokens = [_signed(path, ttl_s=300), _signed(path, ttl_s=600),
              _signed(path, OLD_SIGNER)]  # the previous secret, while rotating
    answers = [edge.get(url) for url in tokens]
    assert [r.status_code for r in answers] == [200] * 3
    assert [r.headers["x-cache-status"] for r in answers] == ["MISS", "HIT", "HIT"]
    assert len(origin.log.requests()) == 1


def test_filtered_masters_are_cached_apart(edge: httpx.Client, origin: OriginServer,
                                           ladder: str) -> None:
    bodies = {}
    for name in ("master.m3u8", "master.h720.m3u8", "master.h1080.m3u8"):
        url = _signed(f"/hls/{ladder}/{name}")
        first, again = edge.get(url), edge.get(_signed(f"/hls/{ladder}/{name}", ttl_s=900))
        assert (first.headers["x-cache-status"], again.headers["x-cache-status"]) == (
            "MISS", "HIT"), name
        assert first.content == again.content
        bodies[name] = first.content
    assert len(set(bodies.values())) == 3
    assert b"1920x1080" not in bodies["master.h720.m3u8"]
    assert b"1920x1080" in bodies["master.h1080.m3u8"]
    # Another spelling is sent to the one URL of its result, under the same token.
    asked = _signed(f"/hls/{ladder}/master.h1000.m3u8")
    moved = edge.get(asked)
    assert moved.status_code == 301 and moved.headers["location"] == "master.h720.m3u8"
    landed = edge.get(httpx.URL(asked).join(moved.headers["location"]))
    assert landed.headers["x-cache-status"] == "HIT"
    assert landed.content == bodies["master.h720.m3u8"]
    assert len(origin.log.requests()) == 4


def test_the_origin_answers_the_cdn_only(tmp_path: Path, origin: OriginServer,
                                         asset: FakeAsset) -> None:
    url = _signed(asset.url("master.m3u8"))
    direct = httpx.get(origin.base_url + url)
    assert direct.status_code == 403 and direct.headers["cache-control"] == "no-store"
    # A CDN still sending the previous secret (rotation) is let in; a stale one is not.
    with Nginx(tmp_path / "old", origin.upstream, origin_secret=ORIGIN_SECRETS[1],
               url_signing_secrets=",".join(URL_SECRETS)) as old:
        assert httpx.get(old.base_url + url).status_code == 200
    with Nginx(tmp_path / "stale", origin.upstream, origin_secret="retired",
               url_signing_secrets=",".join(URL_SECRETS)) as stale:
        refused = httpx.get(stale.base_url + url)
        assert refused.status_code == 403 and "x-cache-status" in refused.headers
        assert httpx.get(stale.base_url + url).headers["x-cache-status"] == "MISS"  # not stored
