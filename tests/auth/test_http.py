"""Bearer checks at the HTTP edge when the deny-list cannot be read."""

from __future__ import annotations

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
