"""The signing secret of a webhook and the signature on every delivery.

``X-Stb-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under the
webhook's secret, with ``X-Stb-Timestamp: <unix seconds>``: the timestamp is
signed too, so a receiver that refuses old timestamps refuses replays. The README
("Webhooks") shows the receiver's side in ten lines.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from stb_origin.envelope import Envelope

TIMESTAMP_HEADER = "X-Stb-Timestamp"
SIGNATURE_HEADER = "X-Stb-Signature"
_CONTEXT = b"stb-webhook-secret"


def new_secret() -> str:
    """256 random bits, prefixed so that a leaked one is recognisable in a scan."""
    return "whsec_" + secrets.token_urlsafe(32)


def seal(envelope: Envelope, webhook_id: str, secret: str) -> bytes:
    return envelope.seal(secret.encode(), _CONTEXT, webhook_id)


def unseal(envelope: Envelope, webhook_id: str, wrapped: bytes) -> str:
    return envelope.open(wrapped, _CONTEXT, webhook_id).decode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
