"""Public keys as JWKs (RFC 7517) and their thumbprints (RFC 7638), which serve as ``kid``."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec


def public_jwk(public_key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    return {**_members(public_key), "kid": kid, "use": "sig", "alg": "ES256"}


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """Stable kid derived from the key itself: SHA-256 of the required members, sorted."""
    canonical = json.dumps(_members(public_key), separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _members(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big"))}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
