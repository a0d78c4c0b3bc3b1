"""RFC 7009 revocation: refresh tokens end their family, access tokens are denied."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stb_origin.oauth import clients
from stb_origin.services import Services
from tests.oauth.conftest import (
    BOX_CLIENT,
    Browser,
    FakeClock,
    Person,
    Service,
    oauth_error,
    sign_in_box,
)


@pytest.fixture
def signed_in(http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
              alice: Person) -> dict[str, Any]:
    return sign_in_box(http, browser, clock, alice.email)


def _revoke(http: httpx.Client, token: str, client_id: str = BOX_CLIENT,
            **fields: str) -> httpx.Response:
    return http.post("/oauth/revoke", data={"token": token, "client_id": client_id, **fields})


def _status(http: httpx.Client, access_token: str) -> int:
    return http.get("/v1/devices", headers={"Authorization": f"Bearer {access_token}"}
                    ).status_code


def test_revoking_an_access_token_denies_it_at_once(
        http: httpx.Client, signed_in: dict[str, Any]) -> None:
    assert _status(http, signed_in["access_token"]) == 200
    response = _revoke(http, signed_in["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert _status(http, signed_in["access_token"]) == 401
    # The refresh token still works: only that one access token was given up.
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": signed_in["refresh_token"],
                                                "client_id": BOX_CLIENT})
    assert refreshed.status_code == 200


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "bogus"])
def test_revoking_a_refresh_token_ends_the_family(
        http: httpx.Client, signed_in: dict[str, Any], hint: str | None) -> None:
    fields = {"token_type_hint": hint} if hint else {}
    assert _revoke(http, signed_in["refresh_token"], **fields).status_code == 200
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": signed_in["refresh_token"],
                                                "client_id": BOX_CLIENT})
    oauth_error(refreshed, "invalid_grant")
    assert _status(http, signed_in["access_token"]) == 401


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 5000])
def test_unknown_tokens_answer_200(http: httpx.Client, box_client: str, token: str) -> None:
    assert _revoke(http, token).status_code == 200


def test_revoking_twice_is_fine(http: httpx.Client, signed_in: dict[str, Any]) -> None:
    assert _revoke(http, signed_in["refresh_token"]).status_code == 200
    assert _revoke(http, signed_in["refresh_token"]).status_code == 200
    assert _revoke(http, signed_in["access_token"]).status_code == 200


def test_revocation_needs_the_token_and_a_client(http: httpx.Client, box_client: str) -> None:
    oauth_error(http.post("/oauth/revoke", data={"client_id": BOX_CLIENT}), "invalid_request")
    oauth_error(http.post("/oauth/revoke", data={"token": "x"}), "invalid_client")
    oauth_error(http.post("/oauth/revoke", data={"token": "x", "client_id": "nobody"}),
                "invalid_client")


def test_a_confidential_client_must_authenticate_to_revoke(
        http: httpx.Client, service_client: Service, services: Services) -> None:
    token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(service_client.client_id, service_client.secret)).json()
    oauth_error(_revoke(http, token["access_token"], client_id=service_client.client_id),
                "invalid_client")
    response = http.post("/oauth/revoke", data={"token": token["access_token"]},
                         auth=(service_client.client_id, "wrong"))
    oauth_error(response, "invalid_client", 401)
    assert _status(http, token["access_token"]) != 401
    response = http.post("/oauth/revoke", data={"token": token["access_token"]},
                         auth=(service_client.client_id, service_client.secret))
    assert response.status_code == 200
    assert http.get("/v1/assets", headers={"Authorization": f"Bearer {token['access_token']}"}
                    ).status_code == 401


def test_a_client_cannot_revoke_another_clients_token(
        http: httpx.Client, signed_in: dict[str, Any], services: Services) -> None:
    with services.db.session() as session:
        clients.ensure_public_client(session, "other-box", "Other box", ["playback"])
    oauth_error(_revoke(http, signed_in["refresh_token"], client_id="other-box"),
                "invalid_grant")
    oauth_error(_revoke(http, signed_in["access_token"], client_id="other-box"),
                "invalid_grant")
    assert _status(http, signed_in["access_token"]) == 200
