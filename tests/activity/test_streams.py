"""A stop report frees the box's stream slot at once: the box past the limit then plays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from stb_origin.app import create_app
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore, streams
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.activity.conftest import entitled_household, ready_asset
from tests.activity.test_routes import another_box
from tests.support.http import run_server


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings.with_(max_streams_per_account=1))
    yield built
    built.close()


def key(api: str, services: Services, asset_id: str, token: str) -> httpx.Response:
    with services.db.session() as session:
        [key_id] = keystore.key_ids(session, asset_id)
    return httpx.get(f"{api}/keys/{asset_id}/{key_id}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def stop(api: str, token: str, asset_id: str) -> httpx.Response:
    return httpx.post(f"{api}/v1/activity", headers={"Authorization": f"Bearer {token}"},
                      timeout=10, json={"asset": asset_id, "position": 12, "kind": "stop",
                                        "profile": "main", "at": utcnow().isoformat()})


def test_a_stop_report_lets_the_next_box_play(services, family):
    film = ready_asset(services)
    living_room = entitled_household(services)
    bedroom = another_box(services, living_room)
    with run_server(create_app(services)) as api:
        assert key(api, services, film, living_room.token).status_code == 200
        refused = key(api, services, film, bedroom.token)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert stop(api, living_room.token, film).status_code == 200
        assert key(api, services, film, bedroom.token).status_code == 200
        # Now the living room is the one past the limit.
        assert key(api, services, film, living_room.token).status_code == 403


def test_progress_reports_keep_a_playing_box_s_slot(services, family):
    # A live channel's key may rotate less often than the idle window: the box's
    # progress reports say it still plays.
    film = ready_asset(services)
    living_room = entitled_household(services)
    bedroom = another_box(services, living_room)
    idle = services.settings.stream_idle_s
    app = create_app(services)
    with run_server(app) as api:
        assert key(api, services, film, living_room.token).status_code == 200
        # Its last key fetch was most of a window ago ...
        now = utcnow()
        services.redis.zadd(streams.set_name(living_room.account_id),
                            {living_room.device_id: int(now.timestamp()) - idle + 60})
        assert progress(api, living_room.token, film).status_code == 200
        # ... and a minute and a half later it still holds its slot.
        app.state.key_delivery.now = lambda: now + timedelta(seconds=90)
        assert key(api, services, film, bedroom.token).json()["error"]["code"] == (
            "too_many_streams")


def test_a_progress_report_takes_no_slot(services, family):
    film = ready_asset(services)
    living_room = entitled_household(services)
    bedroom = another_box(services, living_room)
    with run_server(create_app(services)) as api:
        assert progress(api, living_room.token, film).status_code == 200
        assert key(api, services, film, bedroom.token).status_code == 200


def progress(api: str, token: str, asset_id: str) -> httpx.Response:
    return httpx.post(f"{api}/v1/activity", headers={"Authorization": f"Bearer {token}"},
                      timeout=10, json={"asset": asset_id, "position": 30, "kind": "progress",
                                        "profile": "main", "at": utcnow().isoformat()})
