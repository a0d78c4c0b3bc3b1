"""Bearer checks at the HTTP edge when the deny-list cannot be read, or hangs."""

from __future__ import annotations

import secrets
import socket
import threading
import time

import httpx

from stb_origin.app import create_app
from stb_origin.services import build_services
from stb_origin.settings import Settings
from tests.support.http import run_server


def test_a_token_is_not_honoured_when_revocations_cannot_be_checked(settings: Settings) -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    services = build_services(settings.with_(redis_url="redis://127.0.0.1:1/0"))
    try:
        token = services.signer.issue(["assets:read"])
        with run_server(create_app(services)) as base_url:
            response = httpx.get(base_url + "/v1/assets", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert response.headers["retry-after"] == "5"
        assert response.headers["cache-control"] == "no-store"
        assert token not in response.text
    finally:
        services.close()


def test_a_hung_redis_holds_up_token_checks_but_never_segments(settings: Settings) -> None:
    # A Redis that accepts connections and never answers: the worst kind of outage.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)
    port = blackhole.getsockname()[1]
    services = build_services(settings.with_(redis_url=f"redis://127.0.0.1:{port}/0"))
    asset_id = secrets.token_hex(16)
    services.storage.put_bytes(f"hls/{asset_id}/v1/720p/seg_00001.m4s", b"x" * 1000,
                               "video/iso.segment")
    try:
        token = services.signer.issue(["assets:read"])
        with run_server(create_app(services)) as base_url:
            waiting: list[httpx.Response] = []
            checker = threading.Thread(target=lambda: waiting.append(httpx.get(
                base_url + "/v1/assets", headers={"Authorization": f"Bearer {token}"},
                timeout=60)))
            checker.start()
            time.sleep(0.5)  # the token check is now stuck on Redis
            segment = httpx.get(f"{base_url}/hls/{asset_id}/v1/720p/seg_00001.m4s", timeout=30)
            assert segment.status_code == 200
            # Answered while the token check still waits: the event loop was free.
            assert checker.is_alive()
            checker.join(timeout=60)
        assert waiting and waiting[0].status_code == 503
    finally:
        services.close()
        blackhole.close()
