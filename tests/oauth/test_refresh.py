"""Refresh tokens: rotation, reuse detection revoking the family, revoked devices."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stb_origin.accounts import devices
from stb_origin.oauth import clients
from stb_origin.services import Services
from tests.oauth.conftest import (
    BOX_CLIENT,
    Browser,
    FakeClock,
    Person,
    oauth_error,
    sign_in_box,
)


def _refresh(http: httpx.Client, refresh_token: str, client_id: str = BOX_CLIENT,
             **fields: str) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": refresh_token,
                                           "client_id": client_id, **fields})


def _devices_status(http: httpx.Client, access_token: str) -> int:
    return http.get("/v1/devices", headers={"Authorization": f"Bearer {access_token}"}
                    ).status_code


@pytest.fixture
def signed_in(http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
              alice: Person) -> dict[str, Any]:
    return sign_in_box(http, browser, clock, alice.email)


def test_refresh_rotates_both_tokens(http: httpx.Client, signed_in: dict[str, Any],
                                     services: Services, alice: Person) -> None:
    response = _refresh(http, signed_in["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    fresh = response.json()
    assert set(fresh) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert fresh["refresh_token"] != signed_in["refresh_token"]
    assert fresh["access_token"] != signed_in["access_token"]
    before = services.signer.verify(signed_in["access_token"])
    after = services.signer.verify(fresh["access_token"])
    assert (after.subject, after.device_id, after.client_id) == (alice.id, before.device_id,
                                                                 BOX_CLIENT)
    # The successor rotates in turn.
    assert _refresh(http, fresh["refresh_token"]).status_code == 200


def test_reusing_a_refresh_token_revokes_the_whole_family(
        http: httpx.Client, signed_in: dict[str, Any]) -> None:
    first = signed_in["refresh_token"]
    second = _refresh(http, first).json()
    third = _refresh(http, second["refresh_token"]).json()
    assert _devices_status(http, third["access_token"]) == 200
    # The first token again: stolen, or replayed. Everything of this sign-in ends.
    assert "used already" in oauth_error(_refresh(http, first), "invalid_grant")
    oauth_error(_refresh(http, third["refresh_token"]), "invalid_grant")
    for tokens in (signed_in, second, third):
        assert _devices_status(http, tokens["access_token"]) == 401


def test_reuse_revokes_only_its_own_family(
        http: httpx.Client, signed_in: dict[str, Any], box_client: str, clock: FakeClock,
        services: Services) -> None:
    from tests.oauth.conftest import make_person

    bob = make_person(services, "bob@example.com")
    other = Browser(str(http.base_url))
    bobs = sign_in_box(http, other, clock, bob.email, device_serial="SN-BOB")
    other.close()
    _refresh(http, signed_in["refresh_token"])
    oauth_error(_refresh(http, signed_in["refresh_token"]), "invalid_grant")
    assert _devices_status(http, bobs["access_token"]) == 200
    assert _refresh(http, bobs["refresh_token"]).status_code == 200


def test_refresh_for_a_revoked_device_fails_and_ends_the_grant(
        http: httpx.Client, signed_in: dict[str, Any], services: Services) -> None:
    device_id = services.signer.verify(signed_in["access_token"]).device_id
    assert device_id is not None
    with services.db.session() as session:
        devices.revoke_device(session, device_id)
    assert "removed" in oauth_error(_refresh(http, signed_in["refresh_token"]), "invalid_grant")


def test_refresh_may_narrow_but_not_widen_the_scope(
        http: httpx.Client, signed_in: dict[str, Any]) -> None:
    narrowed = _refresh(http, signed_in["refresh_token"], scope="playback").json()
    assert narrowed["scope"] == "playback"
    # The grant keeps its scopes: the next refresh may ask for all of them again.
    full = _refresh(http, narrowed["refresh_token"]).json()
    assert full["scope"] == "account playback"
    oauth_error(_refresh(http, full["refresh_token"], scope="playback admin"), "invalid_scope")
    oauth_error(_refresh(http, full["refresh_token"], scope="bogus"), "invalid_scope")


@pytest.mark.parametrize("kind", ["access", "garbage", "empty"])
def test_what_is_not_our_refresh_token_is_invalid_grant(
        http: httpx.Client, signed_in: dict[str, Any], kind: str) -> None:
    token = {"access": signed_in["access_token"], "garbage": "a.b.c", "empty": ""}[kind]
    if kind == "empty":
        oauth_error(_refresh(http, token), "invalid_request")
    else:
        oauth_error(_refresh(http, token), "invalid_grant")


def test_refresh_token_of_another_client_is_refused(
        http: httpx.Client, signed_in: dict[str, Any], services: Services) -> None:
    with services.db.session() as session:
        clients.ensure_public_client(session, "other-box", "Other box", ["playback"])
    oauth_error(_refresh(http, signed_in["refresh_token"], client_id="other-box"),
                "invalid_grant")
    # Not a reuse: the rightful client still refreshes.
    assert _refresh(http, signed_in["refresh_token"]).status_code == 200
