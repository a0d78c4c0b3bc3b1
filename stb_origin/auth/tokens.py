"""Access tokens: ES256-signed JWTs with a ``kid``, verified as RFC 8725 asks.

Algorithms are pinned, ``iss``/``aud``/``exp``/``nbf``/``iat`` are required and
checked, the token type is checked, and oversized tokens are refused before
any parsing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stb_origin import secrets as secret_files
from stb_origin.settings import Settings

# account: manage one's own account (devices...); admin: everyone's (needs an admin user)
SCOPES = frozenset({"assets:write", "assets:read", "playback", "account", "admin"})
ALGORITHM = "ES256"
ACCESS_TYPE = "at+jwt"
MAX_TOKEN_BYTES = 4096
LEEWAY_S = 30
DEFAULT_TTL_S = 3600


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    device_id: str | None
    expires_at: int
    token_id: str


class TokenSigner:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey, issuer: str,
                 audience: str) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()
        self.issuer = issuer
        self.audience = audience
        self.kid = _thumbprint(self._public_key)

    def issue(self, scopes: Iterable[str], subject: str = "operator",
              device_id: str | None = None, ttl_s: int = DEFAULT_TTL_S) -> str:
        scope_set = set(scopes)
        unknown = scope_set - SCOPES
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(8),
            "scope": " ".join(sorted(scope_set)),
        }
        if device_id is not None:
            claims["device_id"] = device_id
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM,
                          headers={"kid": self.kid, "typ": ACCESS_TYPE})

    def verify(self, token: str) -> Claims:
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token missing or too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        # Only our own key verifies: jku/x5u/jwk headers are never followed.
        if header.get("alg") != ALGORITHM or header.get("kid") != self.kid:
            raise InvalidToken("unknown signing key or algorithm")
        if header.get("typ") != ACCESS_TYPE:
            raise InvalidToken("not an access token")
        try:
            claims = jwt.decode(
                token, self._public_key, algorithms=[ALGORITHM], audience=self.audience,
                issuer=self.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("invalid scope claim")
        device = claims.get("device_id")
        return Claims(
            subject=str(claims["sub"]),
            scopes=frozenset(scope.split()),
            device_id=str(device) if device is not None else None,
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )


def load_signer(settings: Settings) -> TokenSigner:
    path = settings.jwt_private_key_file or settings.secrets_dir / "jwt-es256.pem"
    pem = secret_files.load_or_create(path, _new_private_pem)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: expected a P-256 EC private key")
    return TokenSigner(key, settings.jwt_issuer, settings.jwt_audience)


def _new_private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint: stable kid derived from the key itself."""
    numbers = public_key.public_numbers()
    jwk = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
           "y": _b64(numbers.y.to_bytes(32, "big"))}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())
