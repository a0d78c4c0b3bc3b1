"""A real nginx with deploy/cdn/nginx.conf in front of the real app on uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stb_origin.app import create_app
from stb_origin.db.types import new_id
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.cdn.nginx import Nginx, js_module, nginx_binary
from tests.cdn.support import FakeAsset, OriginServer

# Playlists expire at the edge after this (instead of 30 s), so expiry, takedown
# and stale tests wait a second or two, not a minute.
PLAYLIST_MAX_AGE_S = 1


@pytest.fixture(autouse=True)
def _nginx_installed() -> None:
    try:
        nginx_binary()
        js_module()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(playlist_max_age_s=PLAYLIST_MAX_AGE_S)


@pytest.fixture
def asset(services: Services) -> FakeAsset:
    return FakeAsset(new_id(), {"low": 20_000, "high": 60_000}).publish(services.storage)


@pytest.fixture
def origin(services: Services) -> Iterator[OriginServer]:
    server = OriginServer(create_app(services)).start()
    yield server
    server.stop()


@pytest.fixture
def cdn(tmp_path: Path, origin: OriginServer) -> Iterator[Nginx]:
    with Nginx(tmp_path / "nginx", origin.upstream) as server:
        yield server


@pytest.fixture
def edge(cdn: Nginx) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cdn.base_url, timeout=10) as client:
        yield client
