"""Discovery (RFC 8414) and the JWKS that verifies what the server signs."""

from __future__ import annotations

import httpx
import jwt

from stb_origin.services import Services
from tests.oauth.conftest import Service


def test_metadata_names_every_endpoint(http: httpx.Client, services: Services) -> None:
    response = http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    base = services.settings.public_base_url
    assert body["issuer"] == base
    assert body["token_endpoint"] == base + "/oauth/token"
    assert body["device_authorization_endpoint"] == base + "/oauth/device_authorization"
    assert body["revocation_endpoint"] == base + "/oauth/revoke"
    assert body["jwks_uri"] == base + "/.well-known/jwks.json"
    assert set(body["grant_types_supported"]) == {
        "urn:ietf:params:oauth:grant-type:device_code", "refresh_token", "client_credentials"}
    assert body["response_types_supported"] == []
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "none"}
    assert set(body["scopes_supported"]) == {"assets:write", "assets:read", "playback",
                                             "account", "admin"}


def test_every_endpoint_the_metadata_names_exists(http: httpx.Client) -> None:
    body = http.get("/.well-known/oauth-authorization-server").json()
    base = body["issuer"]
    for name in ("token_endpoint", "device_authorization_endpoint", "revocation_endpoint"):
        # Not 404/405: a POST without a client is refused by the endpoint itself.
        response = http.post(body[name].removeprefix(base), data={})
        assert response.status_code in (400, 401), (name, response.status_code)


def test_jwks_is_cacheable_briefly_and_verifies_issued_tokens(
        http: httpx.Client, service_client: Service, services: Services) -> None:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys and all("d" not in key for key in keys)  # public halves only
    token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(service_client.client_id, service_client.secret)
                      ).json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=services.settings.jwt_audience)
    assert claims["sub"] == service_client.client_id
    assert claims["client_id"] == service_client.client_id
