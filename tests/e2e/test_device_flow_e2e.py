"""A box signs in with a code, a user approves it in a real browser, and the box plays
what its account is entitled to, with ffmpeg as the player, and nothing else.

Real processes (`stb-origin serve` and `worker`), real Redis, real HTTP, Debian's
headless Chromium driven by Playwright for the verification page.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest

from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.browser import CHROMIUM
from tests.e2e.browser import playwright as browser_driver
from tests.e2e.player import play
from tests.e2e.stack import CLI, Stack, running
from tests.support.media import make_clip

PASSWORD = "correct horse battery staple"
BOX_CLIENT = "stb-box-e2e"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, settings: Settings) -> Iterator[Stack]:
    require_tools("ffmpeg", "ffprobe")
    # Polling as fast as the RFC's floor allows keeps the test short.
    with running(tmp_path / "data", redis_url, settings.queue_name,
                 STB_DEVICE_POLL_INTERVAL_S="1") as stack:
        yield stack




def _api(stack: Stack, token: str, method: str, path: str, **json_body: Any) -> Any:
    response = httpx.request(method, stack.base_url + path, timeout=30,
                             headers={"Authorization": f"Bearer {token}"},
                             json=json_body or None)
    assert response.is_success, (path, response.status_code, response.text)
    return response.json()


def _publish(stack: Stack, clip: Path, token: str, title: str) -> str:
    asset_id = str(stack.upload(clip, token, title=title).json()["id"])
    assert stack.wait_for(asset_id, token)[-1]["status"] == "ready", stack.log_tail()
    return asset_id


def _poll(stack: Stack, device_code: str) -> httpx.Response:
    return httpx.post(stack.base_url + "/oauth/token", timeout=30, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": BOX_CLIENT})


def test_a_box_signs_in_and_plays_only_what_it_is_entitled_to(stack: Stack,
                                                               tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "master.mp4", seconds=4, size="640x360", fps=25, audio=True)
    operator = stack.token("assets:write assets:read admin")
    entitled = _publish(stack, clip, operator, "Entitled film")
    other = _publish(stack, clip, operator, "Premium film")

    # The catalogue side: a package, a subscriber with a password, an entitlement.
    _api(stack, operator, "POST", "/v1/packages", name="basic", title="Basic")
    _api(stack, operator, "POST", "/v1/packages/basic/assets", asset=entitled)
    alice = _api(stack, operator, "POST", "/v1/users", email="alice@example.com",
                 password=PASSWORD)
    _api(stack, operator, "POST", "/v1/entitlements", account=alice["account"],
         package="basic")
    subprocess.run([*CLI, "client", "add", "Living-room box", "--kind", "public",
                    "--scope", "playback", "--client-id", BOX_CLIENT],
                   env=stack.env, check=True, capture_output=True, timeout=30)

    # The box asks for a code and shows it on the TV.
    started = httpx.post(stack.base_url + "/oauth/device_authorization", timeout=30, data={
        "client_id": BOX_CLIENT, "scope": "playback", "device_serial": "SN-E2E-0001",
        "device_model": "STB-9000",
        "device_capabilities": json.dumps({"max_height": 1080, "codecs": ["avc1", "mp4a"]}),
    })
    assert started.status_code == 200, started.text
    grant = started.json()
    assert grant["verification_uri"] == stack.base_url + "/device"
    assert _poll(stack, grant["device_code"]).json()["error"] == "authorization_pending"

    # The user approves it on their phone: a real browser on the verification page.
    with browser_driver() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(grant["verification_uri_complete"])
            page.fill("#email", "alice@example.com")
            page.fill("#password", PASSWORD)
            page.click("#sign-in-submit")
            page.wait_for_selector("#continue, #confirm-user-code, #error")
            if page.locator("#continue").count():  # the code is pre-filled; confirm it
                page.click("#continue")
            page.wait_for_selector("#confirm-user-code, #error")
            assert page.locator("#confirm-user-code").count(), page.content()
            assert page.inner_text("#confirm-user-code") == grant["user_code"]
            assert page.inner_text("#confirm-device-model") == "STB-9000"
            page.click("#approve")
            page.wait_for_selector("#result, #error")
            assert "STB-9000" in page.inner_text("main"), page.content()
        finally:
            browser.close()

    # The box, polling no faster than it was told, gets its tokens.
    time.sleep(grant["interval"])
    issued = _poll(stack, grant["device_code"])
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    # A device code works once.
    time.sleep(grant["interval"])
    assert _poll(stack, grant["device_code"]).json()["error"] in ("invalid_grant",
                                                                   "expired_token")
    access = tokens["access_token"]

    # It plays the entitled film, every frame decrypted by ffmpeg.
    session = _api(stack, access, "GET", f"/v1/playback/{entitled}")
    result = play(session["manifest_url"], access)
    assert result.returncode == 0, result.errors
    assert result.video_frames >= 4 * 25 and result.audio_frames > 0

    # And is refused the other: no playback session, no key.
    refused = httpx.get(f"{stack.base_url}/v1/playback/{other}", timeout=30,
                        headers={"Authorization": f"Bearer {access}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_entitled"
    master_url = f"{stack.base_url}/hls/{other}/master.m3u8"
    blocked = play(master_url, access)
    assert blocked.returncode != 0 and blocked.video_frames == 0
    assert "Unable to open key file" in blocked.errors
    media = m3u8.load(m3u8.load(master_url).playlists[0].absolute_uri)
    key = httpx.get(media.keys[-1].absolute_uri, timeout=30,
                    headers={"Authorization": f"Bearer {access}"})
    assert key.status_code == 403 and key.json()["error"]["code"] == "not_entitled"
