"""The attack suite, token and path half: each forged, stale, misused or misdirected
request for a key is refused over real HTTP, and no key byte goes out.

The baseline is an entitled box whose genuine token gets the key; every case
changes one thing about that request. The OAuth half lives with the
authorization server's tests, against the same real app:

- refresh-token reuse revoking the family: tests/oauth/test_refresh.py,
  and racing refreshes: tests/oauth/test_races.py
- user-code guessing and sign-in guessing, CSRF: tests/oauth/test_verify_page.py
- polling too fast (slow_down), replayed and foreign device codes:
  tests/oauth/test_device_flow.py; racing polls: tests/oauth/test_races.py
- wrong client secrets, public clients posing as confidential:
  tests/oauth/test_client_credentials.py
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from stb_origin.auth import keyring
from stb_origin.auth.tokens import jwt_kek
from stb_origin.drm.keys import ContentKey
from stb_origin.envelope import Envelope
from stb_origin.services import Services
from tests.drm.support import Box, entitle, new_asset

Forge = Callable[[dict[str, Any], dict[str, Any]], str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


@pytest.fixture
def genuine(services: Services, box: Box) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of the box's real token, to forge variants of."""
    return jwt.get_unverified_header(box.token), jwt.decode(
        box.token, options={"verify_signature": False})


@pytest.fixture
def our_key(services: Services, box: Box) -> keyring.SigningKey:
    """The server's own signing key: what a variant needs to be validly signed,
    so that the one thing it changes is what gets it refused."""
    with services.db.session() as session:
        ring = keyring.load_ring(session, Envelope(jwt_kek(services.settings)))
    key = ring.signing_key(time.time())
    assert key is not None
    return key


def _get_key(api: str, film: tuple[str, ContentKey], token: str | None,
             path: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    asset_id, key = film
    return httpx.get(api + (path or f"/keys/{asset_id}/{key.key_id}"), headers=headers,
                     timeout=10)


def _assert_no_key(response: httpx.Response, film: tuple[str, ContentKey],
                   status: int) -> None:
    assert response.status_code == status, response.text
    assert film[1].key not in response.content
    assert "no-store" in response.headers["cache-control"]


def test_the_baseline_box_gets_its_key(api: str, film: tuple[str, ContentKey], box: Box) -> None:
    response = _get_key(api, film, box.token)
    assert response.status_code == 200 and response.content == film[1].key


# -- forged and misused tokens: 401 ---------------------------------------------------------


def _alg_none(header: dict[str, Any], claims: dict[str, Any], _key: Any) -> str:
    return _unsigned({**header, "alg": "none"}, claims) + "."


def _hs256_with_our_public_key(header: dict[str, Any], claims: dict[str, Any],
                               key: keyring.SigningKey) -> str:
    # RS/HS confusion: the verifier's public key used as an HMAC secret.
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _unsigned({**header, "alg": "HS256"}, claims)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _rs256_attacker(header: dict[str, Any], claims: dict[str, Any], _key: Any) -> str:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, attacker, algorithm="RS256", headers={**header, "alg": "RS256"})


def _es256_attacker_with_our_kid(header: dict[str, Any], claims: dict[str, Any],
                                 _key: Any) -> str:
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                      headers=header)


def _attacker_key_in_jwk_and_jku(header: dict[str, Any], claims: dict[str, Any],
                                 _key: Any) -> str:
    attacker = ec.generate_private_key(ec.SECP256R1())
    numbers = attacker.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
           "y": _b64(numbers.y.to_bytes(32, "big"))}
    return jwt.encode(claims, attacker, algorithm="ES256",
                      headers={**header, "jwk": jwk, "jku": "http://127.0.0.1:9/jwks.json",
                               "x5u": "http://127.0.0.1:9/cert.pem"})


def _tampered_scope(header: dict[str, Any], claims: dict[str, Any],
                    key: keyring.SigningKey) -> str:
    signed = jwt.encode(claims, key.private_key, algorithm="ES256", headers=header)
    head, _, signature = signed.split(".")
    body = _b64(json.dumps({**claims, "scope": "playback admin"}).encode())
    return f"{head}.{body}.{signature}"


def _signed(**changes: Any) -> Callable[[dict[str, Any], dict[str, Any], Any], str]:
    """Validly signed with our key, with one claim or header changed."""
    def forge(header: dict[str, Any], claims: dict[str, Any], key: keyring.SigningKey) -> str:
        now = int(time.time())
        new_header = {**header, **changes.pop("header", {})} if "header" in changes else header
        values = {k: (v(now) if callable(v) else v) for k, v in changes.items()}
        new_claims = {k: v for k, v in {**claims, **values}.items() if v is not None}
        return jwt.encode(new_claims, key.private_key, algorithm="ES256", headers=new_header)
    return forge


ATTACKS = {
    "alg none": _alg_none,
    "HS256 keyed with our public key": _hs256_with_our_public_key,
    "RS256 from an attacker": _rs256_attacker,
    "forged signature under our kid": _es256_attacker_with_our_kid,
    "embedded jwk, jku and x5u": _attacker_key_in_jwk_and_jku,
    "tampered payload": _tampered_scope,
    "expired": _signed(exp=lambda now: now - 3600, iat=lambda now: now - 7200,
                       nbf=lambda now: now - 7200),
    "not yet valid": _signed(nbf=lambda now: now + 3600),
    "issued in the future": _signed(iat=lambda now: now + 3600),
    "wrong issuer": _signed(iss="https://evil.example"),
    "wrong audience": _signed(aud="another-service"),
    "no expiry": _signed(exp=None),
    "refresh token used as access": _signed(header={"typ": "rt+jwt"}, fam="f1",
                                            client_id="stb-box"),
    "untyped token": _signed(header={"typ": "JWT"}),
    "unknown kid": _signed(header={"kid": "not-a-key-of-ours"}),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_and_misused_tokens_are_refused(api: str, film: tuple[str, ContentKey],
                                               genuine: tuple[dict[str, Any], dict[str, Any]],
                                               our_key: keyring.SigningKey,
                                               attack: str) -> None:
    header, claims = genuine
    token = ATTACKS[attack](dict(header), dict(claims), our_key)
    response = _get_key(api, film, token)
    _assert_no_key(response, film, 401)
    assert response.json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("token", ["-", "Bearer", "a.b", "a.b.c", "....", "ü.ü.ü",
                                   "eyJhbGciOiJFUzI1NiJ9." * 300,
                                   "x" * 10_000])
def test_malformed_and_oversized_tokens_are_refused(api: str, film: tuple[str, ContentKey],
                                                    box: Box, token: str) -> None:
    response = httpx.get(api + f"/keys/{film[0]}/{film[1].key_id}",
                         headers={"Authorization": f"Bearer {token}".encode()}, timeout=10)
    _assert_no_key(response, film, 401)


def test_a_huge_authorization_header_is_refused_not_parsed(api: str,
                                                            film: tuple[str, ContentKey]) -> None:
    try:
        response = httpx.get(api + f"/keys/{film[0]}/{film[1].key_id}",
                             headers={"Authorization": "Bearer " + "A" * 200_000}, timeout=10)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return  # the server dropped the connection over the oversized header: also a refusal
    assert response.status_code in (400, 401, 431)
    assert film[1].key not in response.content


# -- genuine tokens, wrong things: 403 ------------------------------------------------------


def test_a_revoked_device_is_refused_at_once(api: str, services: Services,
                                             film: tuple[str, ContentKey], box: Box) -> None:
    assert _get_key(api, film, box.token).status_code == 200
    owner = services.signer.issue(["account"], subject=box.user_id)
    assert httpx.post(api + f"/v1/devices/{box.device_id}/revoke",
                      headers={"Authorization": f"Bearer {owner}"}, timeout=10).is_success
    # The deny-list stops the token at the signature check: 401 before any lookup.
    _assert_no_key(_get_key(api, film, box.token), film, 401)


def test_an_unentitled_asset_is_refused(api: str, services: Services, box: Box) -> None:
    other = new_asset(services)  # exists, has keys, but no package of the box's account
    response = _get_key(api, other, box.token)
    _assert_no_key(response, other, 403)
    assert response.json()["error"]["code"] == "not_entitled"


def test_a_token_scoped_to_one_asset_gets_no_key_of_another(
        api: str, services: Services, film: tuple[str, ContentKey], box: Box) -> None:
    other = new_asset(services)
    entitle(services, box.account_id, other[0])  # entitled to both ...
    only_film = services.signer.issue(["playback"], subject=box.user_id,
                                      device_id=box.device_id, assets=[film[0]])
    assert _get_key(api, film, only_film).status_code == 200
    response = _get_key(api, other, only_film)  # ... but the token says film only
    _assert_no_key(response, other, 403)
    assert response.json()["error"]["code"] == "wrong_asset"


def test_another_asset_s_key_id_under_this_asset_is_not_found(
        api: str, services: Services, film: tuple[str, ContentKey], box: Box) -> None:
    other = new_asset(services)
    response = _get_key(api, film, box.token, f"/keys/{film[0]}/{other[1].key_id}")
    assert response.status_code == 404 and other[1].key not in response.content


def test_a_client_credentials_token_plays_nothing(api: str, services: Services,
                                                  film: tuple[str, ContentKey]) -> None:
    service_token = services.signer.issue(["playback"], subject="partner-cms",
                                          client_id="partner-cms")
    response = _get_key(api, film, service_token)
    _assert_no_key(response, film, 403)
    assert response.json()["error"]["code"] == "not_a_user"


def test_a_token_without_the_playback_scope_is_refused(api: str, services: Services,
                                                       film: tuple[str, ContentKey],
                                                       box: Box) -> None:
    account_only = services.signer.issue(["account"], subject=box.user_id,
                                         device_id=box.device_id)
    _assert_no_key(_get_key(api, film, account_only), film, 403)


# -- path tricks on /keys and /hls ----------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/keys/{asset}/..%2f..%2fsecrets%2fkek",
    "/keys/..%2f..%2fsecrets/kek",
    "/keys/{asset}/%2e%2e",
    "/keys/{asset}/{key}%00",
    "/keys/{asset}/{key}/extra",
    "/keys/{ASSET}/{key}",
    "/keys/{asset}%2f..%2f{asset}/{key}",
])
def test_path_tricks_on_keys_get_no_key(api: str, film: tuple[str, ContentKey], box: Box,
                                        path: str) -> None:
    asset_id, key = film
    target = path.format(asset=asset_id, ASSET=asset_id.upper(), key=key.key_id)
    response = _get_key(api, film, box.token, target)
    assert response.status_code in (400, 403, 404), (target, response.status_code)
    assert key.key not in response.content


@pytest.mark.parametrize("path", [
    "/hls/{asset}/../../secrets/kek",
    "/hls/{asset}/..%2f..%2fsecrets%2fkek",
    "/hls/{asset}/%2e%2e/%2e%2e/stb.db",
    "/hls/{asset}/v1/%252e%252e/master.m3u8",
    "/hls/{asset}/v1\\..\\..\\stb.db",
    "/hls/{asset}/v1/seg.m4s%00.m3u8",
    "/hls/..%2fsecrets/kek",
    "/hls/{asset}/.hidden.m3u8",
])
def test_path_tricks_on_hls_reach_nothing_outside_the_asset(
        api: str, services: Services, film: tuple[str, ContentKey], path: str) -> None:
    target = path.format(asset=film[0])
    # A raw request: clients would normalise the dots away before sending.
    with httpx.Client(base_url=api, timeout=10) as client:
        request = client.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=target.encode())
        response = client.send(request)
    assert response.status_code == 404, (target, response.status_code)
    kek = (services.settings.secrets_dir / "kek").read_bytes()
    assert kek not in response.content and b"SQLite format" not in response.content
