"""Concurrent streams, over real HTTP: at most STB_MAX_STREAMS_PER_ACCOUNT boxes of
an account fetch keys at once; a box idle for the window frees its slot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from stb_origin.accounts import devices
from stb_origin.app import create_app
from stb_origin.db.types import utcnow
from stb_origin.drm import streams
from stb_origin.drm.keys import ContentKey
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.drm.support import ANY_BOX, Box, entitle, household, new_asset
from tests.support.http import run_server

LIMIT = 2
IDLE_S = 300


@pytest.fixture
def limited(settings: Settings) -> Iterator[Services]:
    built = build_services(settings.with_(max_streams_per_account=LIMIT, stream_idle_s=IDLE_S))
    yield built
    built.close()


@pytest.fixture
def app(limited: Services) -> Starlette:
    return create_app(limited)


@pytest.fixture
def api(app: Starlette) -> Iterator[str]:
    with run_server(app) as base_url:
        yield base_url


@pytest.fixture
def film(limited: Services) -> tuple[str, ContentKey]:
    return new_asset(limited)


@pytest.fixture
def boxes(limited: Services, film: tuple[str, ContentKey]) -> list[Box]:
    """LIMIT + 1 boxes of one entitled account."""
    first = household(limited)
    entitle(limited, first.account_id, film[0])
    return [first, *(second_box(limited, first, n) for n in range(LIMIT))]


def second_box(services: Services, of: Box, n: int) -> Box:
    with services.db.session() as session:
        device = devices.register_device(session, of.account_id, f"SN-{n + 2}", "Box",
                                         ANY_BOX, max_devices=10)
    token = services.signer.issue(["playback"], subject=of.user_id, device_id=device.id)
    return Box(of.user_id, of.account_id, device.id, token)


def key(api: str, film: tuple[str, ContentKey], token: str) -> httpx.Response:
    return httpx.get(f"{api}/keys/{film[0]}/{film[1].key_id}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def refused_for_streams(response: httpx.Response) -> bool:
    error = response.json()["error"]
    return (response.status_code == 403 and error["code"] == "too_many_streams"
            and f"{LIMIT} boxes" in error["message"]
            and "STB_MAX_STREAMS_PER_ACCOUNT" in error["message"])


def test_the_box_past_the_limit_is_refused_with_the_limit_named(api, film, boxes):
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).content == film[1].key
    assert refused_for_streams(key(api, film, boxes[LIMIT].token))
    # The boxes playing keep playing: a box already counted renews its slot.
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).content == film[1].key


def test_the_refusal_is_in_the_key_audit(api, limited, film, boxes):
    for box in boxes:
        key(api, film, box.token)
    admin = {"Authorization": f"Bearer {limited.signer.issue(['admin'])}"}
    audit = httpx.get(f"{api}/v1/key-audit", params={"device": boxes[LIMIT].device_id},
                      headers=admin, timeout=10).json()["items"]
    assert [row["outcome"] for row in audit] == ["too_many_streams"]


def test_a_box_idle_for_the_window_frees_its_slot(api, app, film, boxes):
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).status_code == 200
    assert refused_for_streams(key(api, film, boxes[LIMIT].token))
    # Only time passes (the server's clock): the first two stopped fetching.
    later = utcnow() + timedelta(seconds=IDLE_S + 1)
    app.state.key_delivery.now = lambda: later
    assert key(api, film, boxes[LIMIT].token).content == film[1].key
    # ... and the one that plays now holds its slot against a returning box.
    assert key(api, film, boxes[1].token).status_code == 200
    assert refused_for_streams(key(api, film, boxes[0].token))


def test_a_released_slot_is_free_at_once(api, limited, film, boxes):
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).status_code == 200
    streams.release(limited.redis, boxes[0].account_id, boxes[0].device_id)
    assert key(api, film, boxes[LIMIT].token).content == film[1].key


def test_a_process_that_never_saw_the_account_counts_the_same_boxes(
        api, limited, film, boxes):
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).status_code == 200
    # A second process: the user's account is unknown there, so its first fetch
    # takes the slot in its own command, after the account is read.
    other = build_services(limited.settings)
    try:
        with run_server(create_app(other)) as api_b:
            assert refused_for_streams(key(api_b, film, boxes[LIMIT].token))
            assert key(api_b, film, boxes[0].token).content == film[1].key
    finally:
        other.close()


def test_other_accounts_have_their_own_slots(api, limited, film, boxes):
    neighbour = household(limited)
    entitle(limited, neighbour.account_id, film[0])
    for box in boxes[:LIMIT]:
        assert key(api, film, box.token).status_code == 200
    assert key(api, film, neighbour.token).content == film[1].key


def test_revocation_still_refuses_a_box_holding_a_slot(api, limited, film, boxes):
    assert key(api, film, boxes[0].token).status_code == 200
    admin = {"Authorization": f"Bearer {limited.signer.issue(['admin'])}"}
    revoked = httpx.post(f"{api}/v1/devices/{boxes[0].device_id}/revoke", headers=admin,
                         timeout=10)
    assert revoked.status_code == 200
    assert key(api, film, boxes[0].token).status_code == 401


def test_the_operator_and_a_zero_limit_are_not_counted(settings, film):
    unlimited = build_services(settings.with_(max_streams_per_account=0))
    try:
        first = household(unlimited)
        entitle(unlimited, first.account_id, film[0])
        many = [first, *(second_box(unlimited, first, n) for n in range(LIMIT + 2))]
        with run_server(create_app(unlimited)) as api:
            assert all(key(api, film, box.token).status_code == 200 for box in many)
            operator = unlimited.signer.issue(["playback"])
            assert key(api, film, operator).status_code == 200
        assert not unlimited.redis.exists(streams.set_name(first.account_id))
    finally:
        unlimited.close()
