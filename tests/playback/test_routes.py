"""GET /v1/playback/{asset_id} over real HTTP: the master a box can play, signed
when signing is on, only for those key delivery would serve."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
import pytest

from stb_origin.accounts.devices import Capabilities
from stb_origin.app import create_app
from stb_origin.origin.urlsign import UrlSigner
from stb_origin.services import Services
from tests.drm.support import Box, entitle, household, new_asset, revoke
from tests.origin.test_masters import MASTER, hdr_master
from tests.support.http import run_server

BASE = "https://cdn.example.com"
PLAYER = "https://player.example.com"
HD_READY = Capabilities(max_width=1280, max_height=1000, codecs=("avc1.640028", "mp4a.40.2"))


@pytest.fixture
def asset_id(services: Services) -> str:
    asset_id, _key = new_asset(services)
    services.storage.put_bytes(f"hls/{asset_id}/master.m3u8", MASTER,
                               "application/vnd.apple.mpegurl")
    services.settings = services.settings.with_(public_base_url=BASE + "/")
    return asset_id


def _box(services: Services, asset_id: str, capabilities: Capabilities = HD_READY) -> Box:
    box = household(services, capabilities)
    entitle(services, box.account_id, asset_id)
    return box


def _start(api: str, asset_id: str, token: str | None,
           headers: dict[str, str] | None = None) -> httpx.Response:
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{api}/v1/playback/{asset_id}", headers={**sent, **(headers or {})},
                     timeout=10)


def test_a_box_gets_the_master_filtered_for_what_it_can_play(api, services, asset_id):
    box = _box(services, asset_id)
    response = _start(api, asset_id, box.token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    # Capped at 1000 lines: snapped down to the ladder's 720 form.
    assert response.json() == {"asset": asset_id, "expires_at": None,
                               "manifest_url": f"{BASE}/hls/{asset_id}/master.h720.m3u8"}
    path = httpx.URL(response.json()["manifest_url"]).path
    master = httpx.get(api + path)
    assert master.status_code == 200
    assert b"RESOLUTION=1280x720" in master.content
    assert b"1920x1080" not in master.content and b"3840x2160" not in master.content


@pytest.mark.parametrize(("capabilities", "name"), [
    (Capabilities(), "master.m3u8"),
    (Capabilities(max_height=2160, codecs=("avc1", "hvc1", "mp4a")), "master.m3u8"),
    (Capabilities(codecs=("avc1.640028", "mp4a.40.2")), "master.h1080.m3u8"),
    (Capabilities(max_width=640), "master.h360.m3u8"),
])
def test_the_form_follows_the_capabilities(api, services, asset_id, capabilities, name):
    box = _box(services, asset_id, capabilities)
    assert _start(api, asset_id, box.token).json()["manifest_url"].endswith(f"/{name}")


@pytest.mark.parametrize(("capabilities", "hevc", "pq"), [
    (Capabilities(codecs=("avc1.640028", "mp4a.40.2"), video_ranges=("PQ",)), False, False),
    (Capabilities(codecs=("avc1", "hvc1", "mp4a")), False, False),
    (Capabilities(codecs=("avc1", "hvc1", "mp4a"), video_ranges=("HLG",)), False, False),
    (Capabilities(codecs=("avc1", "hvc1", "mp4a"), video_ranges=("PQ",)), True, True),
    (Capabilities(), False, False),  # says nothing: every codec, but SDR only
])
def test_hevc_and_hdr_only_for_boxes_that_declare_them(api, services, asset_id, capabilities,
                                                       hevc, pq):
    services.storage.put_bytes(f"hls/{asset_id}/master.m3u8", hdr_master(),
                               "application/vnd.apple.mpegurl")
    box = _box(services, asset_id, capabilities)
    response = _start(api, asset_id, box.token)
    assert response.status_code == 200, response.text
    master = httpx.get(api + httpx.URL(response.json()["manifest_url"]).path)
    assert master.status_code == 200
    assert (b"hvc1" in master.content, b"VIDEO-RANGE=PQ" in master.content) == (hevc, pq)
    # Every box keeps the SDR H.264 ladder.
    assert master.content.count(b'CODECS="avc1.64001f,mp4a.40.2",VIDEO-RANGE=SDR') == 2


def test_the_operator_gets_everything(api, services, asset_id):
    response = _start(api, asset_id, services.signer.issue(["playback"]))
    assert response.json()["manifest_url"] == f"{BASE}/hls/{asset_id}/master.m3u8"


def test_with_signing_on_the_url_is_signed_for_the_ttl(services, asset_id):
    services.settings = services.settings.with_(url_signing_secrets=("s1", "s0"),
                                                playback_url_ttl_s=600)
    box = _box(services, asset_id)
    with run_server(create_app(services)) as api:  # the origin reads settings at start
        before = int(time.time())
        body = _start(api, asset_id, box.token).json()
        expires = int(datetime.fromisoformat(body["expires_at"]).timestamp())
        assert before + 600 <= expires <= int(time.time()) + 600
        url = httpx.URL(body["manifest_url"])
        assert url.path == UrlSigner(("s1",)).sign(f"/hls/{asset_id}/master.h720.m3u8", expires)
        # It plays at the origin, which now refuses the unsigned path.
        assert httpx.get(api + url.path).status_code == 200
        assert httpx.get(f"{api}/hls/{asset_id}/master.h720.m3u8").status_code == 403


def _not_entitled(services: Services, asset_id: str) -> str:
    return household(services, HD_READY).token


def _expired(services: Services, asset_id: str) -> str:
    box = household(services, HD_READY)
    now = datetime.now().astimezone()
    entitle(services, box.account_id, asset_id, now - timedelta(days=2), now - timedelta(days=1))
    return box.token


def _revoked(services: Services, asset_id: str) -> str:
    box = _box(services, asset_id)
    revoke(services, box.device_id)
    return box.token


def _scoped_elsewhere(services: Services, asset_id: str) -> str:
    box = _box(services, asset_id)
    return services.signer.issue(["playback"], subject=box.user_id, device_id=box.device_id,
                                 assets=["e" * 32])


def _client(services: Services, asset_id: str) -> str:
    return services.signer.issue(["playback"], subject="c" * 32, client_id="c" * 32)


@pytest.mark.parametrize(("make_token", "code"), [
    (_not_entitled, "not_entitled"), (_expired, "not_entitled"), (_revoked, "device_revoked"),
    (_scoped_elsewhere, "wrong_asset"), (_client, "not_a_user"),
])
def test_the_same_refusals_as_key_delivery(api, services, asset_id, make_token, code):
    response = _start(api, asset_id, make_token(services, asset_id))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert response.headers["cache-control"] == "private, no-store"
    assert "manifest_url" not in response.text


def test_tokens_and_assets_that_do_not_work(api, services, asset_id):
    assert _start(api, asset_id, None).status_code == 401
    assert _start(api, asset_id, services.signer.issue(["account"])).status_code == 403
    operator = services.signer.issue(["playback"])
    unpublished, _key = new_asset(services)
    for missing in (unpublished, "not-an-id", "0" * 32):
        response = _start(api, missing, operator)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_box_that_can_play_no_variant_is_told_so(api, services, asset_id):
    box = _box(services, asset_id, Capabilities(codecs=("vp09.00.10.08", "opus")))
    response = _start(api, asset_id, box.token)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_playable"


def test_web_players_of_allowed_origins_only(api, services, asset_id):
    services.settings = services.settings.with_(cors_origins=(PLAYER,))
    box = _box(services, asset_id)
    allowed = _start(api, asset_id, box.token, {"Origin": PLAYER})
    assert allowed.headers["access-control-allow-origin"] == PLAYER
    assert allowed.headers["access-control-allow-credentials"] == "true"
    other = _start(api, asset_id, box.token, {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = httpx.options(f"{api}/v1/playback/{asset_id}", headers={
        "Origin": PLAYER, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PLAYER
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
