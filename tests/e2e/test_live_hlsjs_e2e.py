"""A live channel in hls.js in Chromium through the real nginx edge, with an entitled
box's token: it plays, a runner is killed with SIGKILL, another takes the channel
over, and the player goes on (past a discontinuity) without a fatal error. Forged
tokens and unentitled boxes get no live key."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.app import create_app
from stb_origin.auth.tokens import LEEWAY_S
from stb_origin.live import urls
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.cdn.nginx import Nginx
from tests.cdn.support import OriginServer
from tests.conftest import require_tools
from tests.e2e.browser import CHROMIUM
from tests.e2e.browser import playwright as browser_driver
from tests.e2e.test_hlsjs_e2e import CHROMIUM_ARGS, HLS_JS
from tests.support import live
from tests.support.parsers import PLAYER, require_player
from tests.support.workers import CLI, kill_tree, logs, spawn


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, runner_lease_s=4.0, live_window_s=8.0)


@pytest.fixture
def edge(tmp_path: Path, services: Services) -> Iterator[str]:
    with OriginServer(create_app(services)) as origin, \
            Nginx(tmp_path / "nginx", origin.upstream) as cdn:
        yield cdn.base_url


def _box(services: Services, package: str | None) -> str:
    """A playback token of a box on a new account, entitled to ``package`` if given."""
    with services.db.session() as session:
        user = users.create_user(session, f"{os.urandom(4).hex()}@example.com", name="Viewer",
                                 password="a long enough password")
        device = devices.register_device(session, user.account_id, os.urandom(4).hex(), "Box",
                                         devices.Capabilities(), max_devices=5)
        if package is not None:
            entitlements.grant(session, user.account_id, package)
        user_id, device_id = user.id, device.id
    return services.signer.issue(["playback"], subject=user_id, device_id=device_id)


def _holder(token: str) -> tuple[str, str]:
    """The user and the box a token was issued to."""
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"]), str(claims["device_id"])


def _entitle(services: Services, channel_id: str) -> str:
    with services.db.session() as session:
        packages.create_package(session, "live-tv", "Live TV")
        packages.set_channel_packages(session, channel_id, ["live-tv"])
    return "live-tv"


def _poll(page: Any, what: str, check: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate("() => state()")
        assert not state["fatal"], state["fatal"]
        if check(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.25)


def test_hlsjs_plays_live_through_the_edge_across_a_runner_killed_mid_segment(
        services: Services, settings: Settings, edge: str, tmp_path: Path) -> None:
    require_tools("ffmpeg", "ffprobe")
    require_player()
    port = live.free_udp_port()
    channel_id = live.add_channel(services, [live.udp_source(port)], ladder=[72])
    token = _box(services, _entitle(services, channel_id))
    runners: list[subprocess.Popen[bytes]] = []
    try:
        with live.encoder(port), browser_driver() as playwright:
            first = spawn(runners, settings, "runner-a", [*CLI, "channel-runner"])
            live.wait_for("on air", lambda: len(live.segments(services, channel_id)) >= 3,
                          timeout=40, explain=lambda: logs(settings))
            second = spawn(runners, settings, "runner-b", [*CLI, "channel-runner"])
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page_url = edge + "/tests-player/live.html"
                page.route(page_url, lambda route: route.fulfill(
                    body=(PLAYER / "live.html").read_text(), content_type="text/html"))
                page.goto(page_url)
                page.add_script_tag(path=str(HLS_JS))
                page.evaluate("([src, token]) => start(src, token)",
                              [edge + urls.live_master(channel_id), token])
                playing = _poll(page, "playing", lambda s: s["currentTime"] > 3, 40)

                held = services.redis.get(f"stb:live:lease:{channel_id}")
                owner = first if held and held.decode().endswith(f":{first.pid}") else second
                epoch = live.channel(services, channel_id).epoch
                kill_tree(owner)
                # The other runner's segments reach the player, and it plays on.
                after = _poll(page, "playing the new runner's segments",
                              lambda s: any(f"/{epoch + 1}-" in f for f in s["fragments"]),
                              40)
                resumed_at = after["currentTime"]
                final = _poll(page, "playing on", lambda s: s["currentTime"] > resumed_at + 3,
                              30)
            finally:
                browser.close()
    finally:
        for runner in runners:
            kill_tree(runner)

    assert final["currentTime"] > playing["currentTime"] + 3
    assert any(f"/{epoch}-" in f for f in final["fragments"])  # before the kill
    assert not final["fatal"]


def test_forged_tokens_and_unentitled_boxes_get_no_live_key(
        services: Services, tmp_path: Path, edge: str) -> None:
    from datetime import UTC, datetime

    from stb_origin.live.lease import Leases
    from stb_origin.live.publisher import Publisher

    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"], ladder=[72])
    entitled = _box(services, _entitle(services, channel_id))
    unentitled = _box(services, None)
    epoch = Leases(services.redis, services.db, "r1", 5).claim(channel_id)
    assert epoch is not None
    segment = tmp_path / "0.ts"
    segment.write_bytes(b"x" * 1000)
    Publisher(services, channel_id, epoch, 600).publish(0, 0, datetime.now(UTC), 1.0,
                                                        {"72p": segment}, {})
    key_url = f"{edge}/keys/{channel_id}/{live.segments(services, channel_id)[0].key_id}"

    def key(token: str) -> httpx.Response:
        return httpx.get(key_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    assert key(entitled).status_code == 200 and len(key(entitled).content) == 16
    refused = key(unentitled)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_entitled"
    forged = entitled[:-4] + ("AAAA" if not entitled.endswith("AAAA") else "BBBB")
    assert key(forged).status_code == 401
    assert httpx.get(key_url, timeout=10).status_code == 401
    # Expired a minute before the verifier's leeway runs out.
    subject, device = _holder(entitled)
    expired = services.signer.issue(["playback"], subject=subject, device_id=device,
                                     ttl_s=-(LEEWAY_S + 60))
    assert key(expired).status_code == 401
