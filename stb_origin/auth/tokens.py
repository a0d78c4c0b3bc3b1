"""Access and refresh tokens: ES256-signed JWTs with a ``kid``, verified as RFC 8725 asks.

Algorithms are pinned, ``iss``/``aud``/``exp``/``nbf``/``iat`` are required and
checked, the token type (``typ`` header) is checked so that a refresh token is
never taken for an access token or the other way round, oversized tokens are
refused before any parsing, and only keys of our own key ring verify: ``jku``,
``x5u`` and ``jwk`` headers are never followed.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from stb_origin import scopes as known_scopes
from stb_origin.auth.keyring import KeyRing, ensure_signing_key, load_ring
from stb_origin.db import Database
from stb_origin.envelope import Envelope, read_kek
from stb_origin.settings import Settings

# account: manage one's own account (devices...); admin: everyone's (needs an admin user)
ALGORITHM = "ES256"
ACCESS_TYPE = "at+jwt"  # RFC 9068
REFRESH_TYPE = "rt+jwt"
MAX_TOKEN_BYTES = 4096
LEEWAY_S = 30
# Other processes' new keys are picked up within this, or at once for an unknown kid.
RING_RELOAD_S = 60
UNKNOWN_KID_RELOAD_S = 5
VERIFIED_CACHE_SIZE = 4096
_REQUIRED = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired, revoked or of the wrong kind."""


@dataclass(frozen=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    device_id: str | None
    expires_at: int
    token_id: str
    client_id: str | None = None
    # None: any asset; else the only assets this token may fetch keys of
    assets: frozenset[str] | None = None


@dataclass(frozen=True)
class RefreshClaims:
    subject: str
    scopes: frozenset[str]
    device_id: str | None
    client_id: str
    family: str
    token_id: str
    expires_at: int


class TokenSigner:
    def __init__(self, load_ring: Callable[[], KeyRing], issuer: str, audience: str, *,
                 access_ttl_s: int = 600, refresh_ttl_s: int = 30 * 86400,
                 is_denied: Callable[[Claims], bool] = lambda _claims: False,
                 clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self._load_ring = load_ring
        self._is_denied = is_denied
        self._clock = clock
        self._lock = threading.Lock()
        self._ring: KeyRing | None = None
        # token -> (claims, kid) of tokens that verified: a box presents the same
        # token for every key and request, and an ECDSA check costs ~100 us.
        # Expiry, key retirement and the deny-list are still checked on each use.
        self._verified: dict[str, tuple[Claims, str]] = {}
        self._loaded_at = float("-inf")

    # --- issuing ---------------------------------------------------------------

    def issue(self, scopes: Iterable[str], subject: str = "operator",
              device_id: str | None = None, ttl_s: int | None = None,
              client_id: str | None = None, assets: Iterable[str] | None = None) -> str:
        claims = self._base_claims(scopes, subject, ttl_s or self.access_ttl_s)
        if device_id is not None:
            claims["device_id"] = device_id
        if client_id is not None:
            claims["client_id"] = client_id
        if assets is not None:
            claims["assets"] = sorted(set(assets))
        return self._sign(claims, ACCESS_TYPE)

    def issue_refresh(self, subject: str, family: str, scopes: Iterable[str], client_id: str,
                      device_id: str | None = None,
                      ttl_s: int | None = None) -> tuple[str, str]:
        """A refresh token and its jti (which the caller records for rotation)."""
        claims = self._base_claims(scopes, subject, ttl_s or self.refresh_ttl_s)
        claims.update(client_id=client_id, fam=family)
        if device_id is not None:
            claims["device_id"] = device_id
        return self._sign(claims, REFRESH_TYPE), claims["jti"]

    def _base_claims(self, scopes: Iterable[str], subject: str, ttl_s: int) -> dict[str, Any]:
        scope_set = set(scopes)
        unknown = scope_set - known_scopes.ALL
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        now = int(self._clock())
        return {"iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now,
                "nbf": now, "exp": now + ttl_s, "jti": secrets.token_urlsafe(16),
                "scope": " ".join(sorted(scope_set))}

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        ring = self._current_ring(self._clock())
        # Read after the ring: loading it may make the first key, active from
        # the second it was made in, which can be later than the one before.
        now = self._clock()
        key = ring.signing_key(now)
        if key is None:
            raise RuntimeError("no signing key is active")
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM,
                          headers={"kid": key.kid, "typ": typ})

    # --- verifying -------------------------------------------------------------

    def verify(self, token: str, *, check_denied: bool = True) -> Claims:
        """The claims of a valid, unrevoked access token; InvalidToken otherwise.
        check_denied=False leaves the deny-list to the caller, who must read it
        (drm.delivery does, in the same Redis round trip as its other checks)."""
        now = self._clock()
        verified = self._verified.get(token)
        if verified is None or not self._still_valid(verified, now):
            verified = self._verify_access(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = verified
        claims = verified[0]
        if check_denied and self._is_denied(claims):
            raise InvalidToken("token revoked")
        return claims

    def verifies_in_memory(self, token: str) -> bool:
        """Whether ``verify(token)`` can answer without reading the database (the
        token was verified before and the key ring is not due to be reloaded):
        the key path then calls it in the event loop instead of a worker thread."""
        now = self._clock()
        with self._lock:
            if self._ring is None or now - self._loaded_at >= RING_RELOAD_S:
                return False
        verified = self._verified.get(token)
        return verified is not None and now < verified[0].expires_at + LEEWAY_S

    def _still_valid(self, verified: tuple[Claims, str], now: float) -> bool:
        claims, kid = verified
        return (now < claims.expires_at + LEEWAY_S
                and self._current_ring(now).verifies(kid, now))

    def _verify_access(self, token: str) -> tuple[Claims, str]:
        claims, kid = self._decode(token, ACCESS_TYPE)
        assets = claims.get("assets")
        if assets is not None and not (
                isinstance(assets, list) and all(isinstance(a, str) for a in assets)):
            raise InvalidToken("invalid assets claim")
        client = claims.get("client_id")
        return Claims(
            subject=str(claims["sub"]),
            scopes=_scopes(claims),
            device_id=_optional_str(claims, "device_id"),
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
            client_id=str(client) if client is not None else None,
            assets=frozenset(assets) if assets is not None else None,
        ), kid

    def verify_refresh(self, token: str) -> RefreshClaims:
        claims, _kid = self._decode(token, REFRESH_TYPE)
        if not isinstance(claims.get("fam"), str) or not isinstance(claims.get("client_id"), str):
            raise InvalidToken("invalid refresh token")
        return RefreshClaims(
            subject=str(claims["sub"]), scopes=_scopes(claims),
            device_id=_optional_str(claims, "device_id"), client_id=claims["client_id"],
            family=claims["fam"], token_id=str(claims["jti"]), expires_at=int(claims["exp"]))

    def _decode(self, token: str, typ: str) -> tuple[dict[str, Any], str]:
        """The claims and kid of a token of type ``typ`` that verifies now."""
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token missing or too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported algorithm")
        if header.get("typ") != typ:
            raise InvalidToken("wrong token type")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("unknown signing key: the token has no kid")
        if (key := self._verifying_key(kid)) is None:
            # kids are public (JWKS); the usual cause is a token another data dir signed
            raise InvalidToken(f"unknown signing key: kid {_shown(kid)} is not one of this"
                               " server's keys (a token from another installation or data dir?)")
        try:
            # The times are checked below against our clock (injectable in tests).
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=self.audience,
                issuer=self.issuer, options={"require": _REQUIRED, "verify_exp": False,
                                             "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidIssuerError:
            # Only reached once our own key has verified the signature.
            got = jwt.decode(token, key, algorithms=[ALGORITHM],
                             options={"verify_aud": False, "verify_iss": False,
                                      "verify_exp": False, "verify_nbf": False,
                                      "verify_iat": False}).get("iss")
            raise InvalidToken(f"wrong issuer: this server expects {self.issuer!r}, the token"
                               f" has {_shown(got)} (STB_PUBLIC_BASE_URL or STB_JWT_ISSUER"
                               " differs between who signed it and this server)") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"wrong audience: this server expects {self.audience!r}"
                               " (STB_JWT_AUDIENCE)") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        times = [claims[name] for name in ("exp", "nbf", "iat")]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in times):
            raise InvalidToken("invalid time claims")
        exp, nbf, iat = times
        now = self._clock()
        if now >= exp + LEEWAY_S:
            raise InvalidToken("token expired")
        if now < nbf - LEEWAY_S or now < iat - LEEWAY_S:
            raise InvalidToken("token not valid yet")
        return claims, kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        now = self._clock()
        return self._current_ring(now).jwks(now)

    # --- the key ring ----------------------------------------------------------

    def _verifying_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        now = self._clock()
        key = self._current_ring(now).verifying_key(kid, now)
        if key is None and now - self._loaded_at >= UNKNOWN_KID_RELOAD_S:
            # Perhaps another process has just added it.
            key = self._current_ring(now, force=True).verifying_key(kid, now)
        return key

    def _current_ring(self, now: float, force: bool = False) -> KeyRing:
        with self._lock:
            if self._ring is None or force or now - self._loaded_at >= RING_RELOAD_S:
                self._ring = self._load_ring()
                self._loaded_at = now
            return self._ring


def load_signer(settings: Settings, db: Database,
                is_denied: Callable[[Claims], bool] = lambda _claims: False,
                clock: Callable[[], float] = time.time) -> TokenSigner:
    """A signer over the key ring in ``db``; the JWT KEK is read on first use
    only, so processes that never sign or verify never need it."""

    @functools.cache
    def envelope() -> Envelope:
        return Envelope(jwt_kek(settings))

    def load() -> KeyRing:
        with db.session() as session:
            ensure_signing_key(session, envelope(), int(clock()))
            return load_ring(session, envelope())

    return TokenSigner(load, settings.issuer, settings.jwt_audience,
                       access_ttl_s=settings.access_token_ttl_s,
                       refresh_ttl_s=settings.refresh_token_ttl_s,
                       is_denied=is_denied, clock=clock)


def jwt_kek(settings: Settings) -> bytes:
    return read_kek(settings.jwt_key_encryption_key, "STB_JWT_KEY_ENCRYPTION_KEY",
                    settings.secrets_dir / "jwt-kek")


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("invalid scope claim")
    return frozenset(scope.split())


def _shown(value: object) -> str:
    """A claim or header value for an error message: quoted, never long."""
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _optional_str(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return str(value) if value is not None else None
