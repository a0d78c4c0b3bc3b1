import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from stb_origin.auth.tokens import ALGORITHM, InvalidToken, TokenSigner, load_signer
from stb_origin.settings import Settings


@pytest.fixture
def signer(tmp_path):
    return load_signer(Settings(data_dir=tmp_path))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(signer: TokenSigner, **overrides):
    now = int(time.time())
    claims = {"iss": signer.issuer, "aud": signer.audience, "sub": "box", "iat": now,
              "nbf": now, "exp": now + 600, "jti": "j1", "scope": "playback"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign_with_own_key(signer: TokenSigner, claims, headers=None):
    return jwt.encode(claims, signer._private_key, algorithm=ALGORITHM,
                      headers={"kid": signer.kid, "typ": "at+jwt", **(headers or {})})


def test_issued_token_verifies_with_scopes_and_device(signer):
    claims = signer.verify(signer.issue(["playback"], subject="u1", device_id="box-7"))
    assert claims.scopes == {"playback"}
    assert claims.subject == "u1"
    assert claims.device_id == "box-7"


def test_unknown_scope_is_refused_at_issue(signer):
    with pytest.raises(ValueError, match="unknown scope"):
        signer.issue(["admin:everything"])


def test_key_file_is_private_and_stable(tmp_path):
    first = load_signer(Settings(data_dir=tmp_path))
    second = load_signer(Settings(data_dir=tmp_path))
    assert first.kid == second.kid
    mode = (tmp_path / "secrets" / "jwt-es256.pem").stat().st_mode & 0o777
    assert mode == 0o600


def test_alg_none_is_refused(signer):
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": signer.kid}).encode())
    payload = _b64(json.dumps(_claims(signer)).encode())
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key_is_refused(signer):
    # The classic RS/HS confusion: the public key used as an HMAC secret.
    public_pem = signer._public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": signer.kid}).encode())
    payload = _b64(json.dumps(_claims(signer)).encode())
    import hashlib
    import hmac
    sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.{_b64(sig)}")


def test_rs256_token_is_refused(signer):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(signer), other, algorithm="RS256",
                       headers={"kid": signer.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_forged_signature_from_another_key_is_refused(signer):
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(signer), other, algorithm="ES256",
                       headers={"kid": signer.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_tampered_payload_is_refused(signer):
    header, _, sig = signer.issue(["playback"]).split(".")
    payload = _b64(json.dumps(_claims(signer, scope="assets:write playback")).encode())
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.{sig}")


def test_embedded_jwk_header_is_not_trusted(signer):
    attacker = ec.generate_private_key(ec.SECP256R1())
    numbers = attacker.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
           "y": _b64(numbers.y.to_bytes(32, "big"))}
    token = jwt.encode(_claims(signer), attacker, algorithm="ES256",
                       headers={"kid": signer.kid, "typ": "at+jwt", "jwk": jwk,
                                "jku": "http://127.0.0.1:1/jwks.json"})
    with pytest.raises(InvalidToken):
        signer.verify(token)


@pytest.mark.parametrize("overrides", [
    {"exp": int(time.time()) - 3600},
    {"nbf": int(time.time()) + 3600},
    {"iss": "someone-else"},
    {"aud": "another-service"},
    {"exp": None},
    {"iat": None},
    {"nbf": None},
    {"sub": None},
])
def test_bad_claims_are_refused(signer, overrides):
    with pytest.raises(InvalidToken):
        signer.verify(_sign_with_own_key(signer, _claims(signer, **overrides)))


def test_small_clock_skew_is_tolerated(signer):
    token = _sign_with_own_key(signer, _claims(signer, nbf=int(time.time()) + 10))
    assert signer.verify(token).scopes == {"playback"}


def test_wrong_token_type_is_refused(signer):
    token = _sign_with_own_key(signer, _claims(signer), headers={"typ": "refresh+jwt"})
    with pytest.raises(InvalidToken, match="not an access token"):
        signer.verify(token)


def test_unknown_kid_is_refused(signer):
    token = jwt.encode(_claims(signer), signer._private_key, algorithm=ALGORITHM,
                       headers={"kid": "some-other-key", "typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="unknown signing key"):
        signer.verify(token)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "😀.😀.😀", "x" * 5000])
def test_malformed_and_oversized_tokens_are_refused(signer, token):
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_token_from_another_installation_is_refused(signer, tmp_path):
    other = load_signer(Settings(data_dir=tmp_path / "elsewhere"))
    with pytest.raises(InvalidToken):
        signer.verify(other.issue(["playback"]))
