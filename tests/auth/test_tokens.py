import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from stb_origin.auth import keyring
from stb_origin.auth.tokens import (
    ALGORITHM,
    LEEWAY_S,
    RING_RELOAD_S,
    InvalidToken,
    TokenSigner,
    jwt_kek,
    load_signer,
)
from stb_origin.envelope import Envelope
from stb_origin.migrations import open_database
from stb_origin.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path)


@pytest.fixture
def signer(settings, db, clock):
    return load_signer(settings, db, clock=clock)


def _signing_key(settings, db, now=None) -> keyring.SigningKey:
    with db.session() as session:
        ring = keyring.load_ring(session, Envelope(jwt_kek(settings)))
    key = ring.signing_key(now or time.time())
    assert key is not None
    return key


def _key_of(settings, db, kid):
    with db.session() as session:
        ring = keyring.load_ring(session, Envelope(jwt_kek(settings)))
    return next(k.private_key for k in ring.keys if k.kid == kid)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(signer: TokenSigner, **overrides):
    now = int(time.time())
    claims = {"iss": signer.issuer, "aud": signer.audience, "sub": "box", "iat": now,
              "nbf": now, "exp": now + 600, "jti": "j1", "scope": "playback"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def own_key(signer, settings, db):
    signer.issue(["playback"])  # makes the first key
    return _signing_key(settings, db)


@pytest.fixture
def sign_own(own_key):
    def sign(claims, headers=None):
        return jwt.encode(claims, own_key.private_key, algorithm=ALGORITHM,
                          headers={"kid": own_key.kid, "typ": "at+jwt", **(headers or {})})
    return sign


def test_issued_token_verifies_with_scopes_and_device(signer):
    claims = signer.verify(signer.issue(["playback"], subject="u1", device_id="box-7",
                                        client_id="stb-box", assets=["a1"]))
    assert claims.scopes == {"playback"}
    assert claims.subject == "u1"
    assert claims.device_id == "box-7"
    assert claims.client_id == "stb-box"
    assert claims.assets == {"a1"}


def test_access_tokens_are_short_lived_by_default(signer, clock):
    claims = signer.verify(signer.issue(["playback"]))
    assert claims.expires_at == int(clock.now) + Settings().access_token_ttl_s


def test_unknown_scope_is_refused_at_issue(signer):
    with pytest.raises(ValueError, match="unknown scope"):
        signer.issue(["admin:everything"])


def test_signing_keys_are_shared_and_stored_wrapped(settings, db, signer):
    token = signer.issue(["playback"])
    # Another process over the same database verifies it.
    assert load_signer(settings, db).verify(token).scopes == {"playback"}
    key = _signing_key(settings, db)
    der = key.private_key.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    with db.session() as session:
        stored = session.get(keyring.SigningKeyRecord, key.kid)
        assert stored is not None and der not in stored.wrapped
    mode = (settings.secrets_dir / "jwt-kek").stat().st_mode & 0o777
    assert mode == 0o600


def test_a_row_swapped_for_another_kid_does_not_unwrap(settings, db, signer, clock):
    signer.issue(["playback"])
    with db.session() as session:
        envelope = Envelope(jwt_kek(settings))
        keyring.rotate(session, envelope, int(clock.now), 0, 3600)
        first, second = session.query(keyring.SigningKeyRecord).all()
        first.wrapped, second.wrapped = second.wrapped, first.wrapped
    with pytest.raises(Exception, match="failed to authenticate"), db.session() as session:
        keyring.load_ring(session, Envelope(jwt_kek(settings)))


def test_rotation_without_downtime(settings, db, signer, clock):
    old_token = signer.issue(["playback"])
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    with db.session() as session:
        keyring.rotate(session, Envelope(jwt_kek(settings)), int(clock.now),
                       activation_delay_s=900, max_token_lifetime_s=600 + LEEWAY_S)
    # Another server process picks the new key up; it is published but does not sign yet.
    other = load_signer(settings, db, clock=clock)
    kids = [k["kid"] for k in other.jwks()["keys"]]
    assert len(kids) == 2 and old_kid in kids
    assert jwt.get_unverified_header(other.issue(["playback"]))["kid"] == old_kid
    # Once active, the new key signs and the old key's tokens still verify ...
    clock.now += 900
    new_token = load_signer(settings, db, clock=clock).issue(["playback"])
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid and new_kid in kids
    assert other.verify(new_token).scopes == {"playback"}
    # ... until the last token the old key could have signed has expired.
    clock.now += 600 + LEEWAY_S
    with pytest.raises(InvalidToken, match="unknown signing key"):
        load_signer(settings, db, clock=clock).verify(
            jwt.encode(jwt.decode(old_token, options={"verify_signature": False}),
                       _key_of(settings, db, old_kid), algorithm=ALGORITHM,
                       headers={"kid": old_kid, "typ": "at+jwt"}))
    assert [k["kid"] for k in load_signer(settings, db, clock=clock).jwks()["keys"]] == [new_kid]


def test_retired_key_no_longer_verifies(settings, db, signer, clock):
    token = signer.issue(["playback"], ttl_s=10 * 3600)
    with db.session() as session:
        keyring.rotate(session, Envelope(jwt_kek(settings)), int(clock.now), 0, 60)
    clock.now += 61
    fresh = load_signer(settings, db, clock=clock)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        fresh.verify(token)


def test_jwks_verifies_issued_tokens_with_a_generic_library(signer):
    token = signer.issue(["playback"], subject="u1")
    (jwk,) = signer.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    key = jwt.PyJWK(jwk)
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=signer.audience)
    assert claims["sub"] == "u1"


def test_refresh_and_access_tokens_are_not_interchangeable(signer):
    refresh, jti = signer.issue_refresh("u1", family="f1", scopes=["playback"],
                                        client_id="stb-box", device_id="d1")
    claims = signer.verify_refresh(refresh)
    assert (claims.family, claims.token_id, claims.device_id) == ("f1", jti, "d1")
    with pytest.raises(InvalidToken, match="wrong token type"):
        signer.verify(refresh)
    with pytest.raises(InvalidToken, match="wrong token type"):
        signer.verify_refresh(signer.issue(["playback"]))


def test_denied_tokens_are_refused(settings, db, clock):
    denied: set[str] = set()
    signer = load_signer(settings, db, clock=clock,
                         is_denied=lambda c: c.token_id in denied or c.device_id in denied)
    token = signer.issue(["playback"], device_id="d1")
    assert signer.verify(token).device_id == "d1"
    denied.add("d1")
    with pytest.raises(InvalidToken, match="revoked"):
        signer.verify(token)


def test_alg_none_is_refused(signer, own_key):
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": own_key.kid}).encode())
    payload = _b64(json.dumps(_claims(signer)).encode())
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key_is_refused(signer, own_key):
    # The classic RS/HS confusion: the public key used as an HMAC secret.
    public_pem = own_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": own_key.kid}).encode())
    payload = _b64(json.dumps(_claims(signer)).encode())
    import hashlib
    import hmac
    sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.{_b64(sig)}")


def test_rs256_token_is_refused(signer, own_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(signer), other, algorithm="RS256",
                       headers={"kid": own_key.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_forged_signature_from_another_key_is_refused(signer, own_key):
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(signer), other, algorithm="ES256",
                       headers={"kid": own_key.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_tampered_payload_is_refused(signer):
    header, _, sig = signer.issue(["playback"]).split(".")
    payload = _b64(json.dumps(_claims(signer, scope="assets:write playback")).encode())
    with pytest.raises(InvalidToken):
        signer.verify(f"{header}.{payload}.{sig}")


def test_embedded_jwk_header_is_not_trusted(signer, own_key):
    attacker = ec.generate_private_key(ec.SECP256R1())
    numbers = attacker.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
           "y": _b64(numbers.y.to_bytes(32, "big"))}
    token = jwt.encode(_claims(signer), attacker, algorithm="ES256",
                       headers={"kid": own_key.kid, "typ": "at+jwt", "jwk": jwk,
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
def test_bad_claims_are_refused(signer, overrides, sign_own):
    with pytest.raises(InvalidToken):
        signer.verify(sign_own(_claims(signer, **overrides)))


def test_small_clock_skew_is_tolerated(signer, sign_own):
    token = sign_own(_claims(signer, nbf=int(time.time()) + 10))
    assert signer.verify(token).scopes == {"playback"}


def test_wrong_token_type_is_refused(signer, sign_own):
    token = sign_own(_claims(signer), headers={"typ": "rt+jwt"})
    with pytest.raises(InvalidToken, match="wrong token type"):
        signer.verify(token)


def test_unknown_kid_is_refused(signer, own_key):
    token = jwt.encode(_claims(signer), own_key.private_key, algorithm=ALGORITHM,
                       headers={"kid": "some-other-key", "typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="unknown signing key: kid 'some-other-key'"):
        signer.verify(token)


def test_a_token_for_another_issuer_says_which_issuer_was_expected(signer):
    # The same key ring behind another base URL: `stb-origin token` run without the
    # dev server's STB_PUBLIC_BASE_URL.
    other = TokenSigner(signer._load_ring, "http://127.0.0.1:9999", signer.audience)
    with pytest.raises(InvalidToken) as refused:
        signer.verify(other.issue(["playback"]))
    assert str(refused.value).startswith(
        f"wrong issuer: this server expects {signer.issuer!r}, the token has"
        " 'http://127.0.0.1:9999'")


def test_a_token_for_another_audience_says_which_audience_was_expected(signer):
    other = TokenSigner(signer._load_ring, signer.issuer, "another-service")
    with pytest.raises(InvalidToken, match="wrong audience: this server expects 'stb-origin'"):
        signer.verify(other.issue(["playback"]))


def test_refusals_never_echo_a_long_header_or_any_key_material(signer, own_key):
    token = jwt.encode(_claims(signer), own_key.private_key, algorithm=ALGORITHM,
                       headers={"kid": "k" * 500, "typ": "at+jwt"})
    with pytest.raises(InvalidToken) as refused:
        signer.verify(token)
    message = str(refused.value)
    assert len(message) < 300 and "k" * 100 not in message
    assert "PRIVATE" not in message and token not in message


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "😀.😀.😀", "x" * 5000])
def test_malformed_and_oversized_tokens_are_refused(signer, token):
    with pytest.raises(InvalidToken):
        signer.verify(token)


def test_token_from_another_installation_is_refused(signer, tmp_path):
    elsewhere = Settings(data_dir=tmp_path / "elsewhere")
    other = load_signer(elsewhere, open_database(elsewhere.resolved_database_url))
    signer.issue(["playback"])
    with pytest.raises(InvalidToken, match="unknown signing key: kid '.+' is not one of this"):
        signer.verify(other.issue(["playback"]))


def test_a_verified_token_is_remembered_but_still_expires(signer, clock):
    token = signer.issue(["playback"], ttl_s=60)
    assert signer.verify(token) == signer.verify(token)
    clock.now += 60 + LEEWAY_S
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token)


def test_a_remembered_token_stops_when_its_key_retires(settings, db, signer, clock):
    token = signer.issue(["playback"], ttl_s=10 * 3600)
    signer.verify(token)
    with db.session() as session:
        keyring.rotate(session, Envelope(jwt_kek(settings)), int(clock.now), 0, 60)
    clock.now += RING_RELOAD_S + 61  # this signer rereads the ring by then
    with pytest.raises(InvalidToken, match="unknown signing key"):
        signer.verify(token)


def test_the_first_token_signs_when_making_the_first_key_crosses_a_second(settings, db):
    # The first key is made, and stamped active from the whole second it was made
    # in, while the first token is being signed: when that second is later than
    # the one the signing began in, the new key must still sign it. (Seen as a
    # rare "no signing key is active" in set-ups on a fresh database.)
    ticks = iter(1_800_000_000.3 + 0.4 * n for n in range(1000))
    signer = load_signer(settings, db, clock=lambda: next(ticks))
    token = signer.issue(["playback"])
    assert signer.verify(token, check_denied=False).scopes == {"playback"}
