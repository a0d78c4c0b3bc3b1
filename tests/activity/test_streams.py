"""A stop report frees the box's stream slot at once: the box past the limit then plays."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from stb_origin.app import create_app
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore
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
