"""Client credentials for third-party services: secrets, scopes, no refresh."""

from __future__ import annotations

import httpx
import pytest

from stb_origin.oauth.models import OAuthClient
from stb_origin.services import Services
from tests.oauth.conftest import BOX_CLIENT, Service, oauth_error

GRANT = {"grant_type": "client_credentials"}


def test_basic_authentication_gives_a_token_for_the_client_itself(
        http: httpx.Client, service_client: Service, services: Services) -> None:
    response = http.post("/oauth/token", data=GRANT,
                         auth=(service_client.client_id, service_client.secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh
    assert body["scope"] == "assets:read"
    claims = services.signer.verify(body["access_token"])
    assert claims.subject == service_client.client_id == claims.client_id
    assert claims.device_id is None
    listed = http.get("/v1/assets", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200, listed.text


def test_post_authentication_works_too(http: httpx.Client, service_client: Service) -> None:
    response = http.post("/oauth/token", data={
        **GRANT, "client_id": service_client.client_id, "client_secret": service_client.secret,
        "scope": "assets:read"})
    assert response.status_code == 200, response.text


def test_basic_credentials_are_form_decoded(http: httpx.Client, services: Services) -> None:
    from stb_origin.oauth import clients

    with services.db.session() as session:
        client, secret = clients.create_client(session, "Partner", "confidential",
                                               "assets:read", client_id="partner.one")
    assert secret is not None
    import base64
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client.id)}:{quote_plus(secret)}".encode()
    response = http.post("/oauth/token", data=GRANT, headers={
        "Authorization": "Basic " + base64.b64encode(raw).decode()})
    assert response.status_code == 200, response.text


def test_wrong_secret_in_basic_answers_401_with_a_challenge(
        http: httpx.Client, service_client: Service) -> None:
    response = http.post("/oauth/token", data=GRANT,
                         auth=(service_client.client_id, "not-the-secret"))
    assert "failed" in oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")


def test_wrong_secret_in_the_body_answers_400(http: httpx.Client, service_client: Service
                                              ) -> None:
    response = http.post("/oauth/token", data={**GRANT, "client_id": service_client.client_id,
                                               "client_secret": "not-the-secret"})
    oauth_error(response, "invalid_client")


def test_guessing_a_secret_is_cut_off_before_it_loads_the_server(
        http: httpx.Client, service_client: Service) -> None:
    from stb_origin.oauth.service import SECRET_ATTEMPTS_PER_MINUTE

    answers = [http.post("/oauth/token", data=GRANT,
                         auth=(service_client.client_id, f"guess-{n}")).status_code
               for n in range(SECRET_ATTEMPTS_PER_MINUTE + 1)]
    # (A minute boundary inside the burst would reset the count: allow one more.)
    assert answers[:SECRET_ATTEMPTS_PER_MINUTE - 1] == [401] * (SECRET_ATTEMPTS_PER_MINUTE - 1)
    refused = http.post("/oauth/token", data=GRANT,
                        auth=(service_client.client_id, service_client.secret))
    assert 429 in answers or refused.status_code == 429
    if refused.status_code == 429:
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "bm9jb2xvbg==", "Bearer abc"])
def test_malformed_client_authentication_is_invalid_client(
        http: httpx.Client, service_client: Service, header: str) -> None:
    response = http.post("/oauth/token", data=GRANT, headers={"Authorization": header})
    oauth_error(response, "invalid_client", 401)


def test_missing_secret_is_invalid_client(http: httpx.Client, service_client: Service) -> None:
    oauth_error(http.post("/oauth/token", data={**GRANT, "client_id": service_client.client_id}),
                "invalid_client")


def test_two_authentication_methods_at_once_are_refused(
        http: httpx.Client, service_client: Service) -> None:
    response = http.post("/oauth/token", data={**GRANT, "client_secret": service_client.secret},
                         auth=(service_client.client_id, service_client.secret))
    oauth_error(response, "invalid_request")


def test_scopes_are_limited_to_the_clients(http: httpx.Client, service_client: Service) -> None:
    response = http.post("/oauth/token", data={**GRANT, "scope": "assets:read assets:write"},
                         auth=(service_client.client_id, service_client.secret))
    oauth_error(response, "invalid_scope")


def test_a_public_client_cannot_use_client_credentials(http: httpx.Client, box_client: str
                                                       ) -> None:
    oauth_error(http.post("/oauth/token", data={**GRANT, "client_id": BOX_CLIENT}),
                "unauthorized_client")


def test_a_confidential_client_cannot_refresh(http: httpx.Client, service_client: Service
                                              ) -> None:
    response = http.post("/oauth/token", data={"grant_type": "refresh_token",
                                               "refresh_token": "x"},
                         auth=(service_client.client_id, service_client.secret))
    oauth_error(response, "unauthorized_client")


def test_the_secret_is_stored_hashed(service_client: Service, services: Services) -> None:
    with services.db.session() as session:
        stored = session.get(OAuthClient, service_client.client_id)
        assert stored is not None
        assert stored.secret_hash is not None and stored.secret_hash.startswith("$scrypt$")
        assert service_client.secret not in stored.secret_hash
        assert service_client.secret not in repr(stored)
