"""Signed playback URLs: an expiring HMAC-SHA256 token in the path, checked by the
CDN (deploy/cdn/urlsign.js) and the origin alike.

A signed URL puts one segment right after ``/hls/``::

    /hls/st=exp=<unix seconds>~acl=<asset id>~hmac=<64 hex>/<asset id>/<path>

``hmac`` is HMAC-SHA256 under a shared secret of the text between ``st=`` and
``~hmac=`` (``exp=...~acl=...``), lower-case hex. The token opens every path
under ``/hls/<acl>/`` until ``exp``. Being a path segment, it is inherited by
the relative URIs inside the playlists (variants, segments, init sections), so
the playlists themselves never carry a token and stay shared by every box in
the CDN cache, whose key drops the segment.

Secrets rotate: the first one signs, every one verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

PREFIX = "/hls/"
SEGMENT = "st="
_TOKEN = re.compile(r"st=(exp=(\d{1,12})~acl=([A-Za-z0-9_.-]{1,128}))~hmac=([0-9a-f]{64})")


class BadSignature(Exception):
    """The token is missing, malformed, expired, forged or for another prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"a valid signed URL is required ({reason})")
        self.reason = reason


def _digest(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class UrlSigner:
    secrets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not all(self.secrets):
            raise ValueError("URL signing secrets must not be empty")

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)

    def token(self, acl: str, expires_at: int) -> str:
        """The path segment that opens /hls/{acl}/ until expires_at."""
        if not self.secrets:
            raise ValueError("URL signing is off: no secret")
        message = f"exp={expires_at}~acl={acl}"
        if not _TOKEN.fullmatch(f"{SEGMENT}{message}~hmac={'0' * 64}"):
            raise ValueError(f"cannot sign for {acl!r}")
        return f"{SEGMENT}{message}~hmac={_digest(self.secrets[0], message)}"

    def sign(self, path: str, expires_at: int) -> str:
        """``/hls/<asset>/<rest>`` signed for the whole asset, until expires_at."""
        if not path.startswith(PREFIX):
            raise ValueError(f"not an HLS path: {path!r}")
        rest = path.removeprefix(PREFIX)
        acl = rest.partition("/")[0]
        return f"{PREFIX}{self.token(acl, expires_at)}/{rest}"

    def verify(self, token: str, rest: str, now: float) -> None:
        """Raise BadSignature unless ``token`` (the segment after /hls/) opens
        ``rest`` (the path after the segment) at ``now``."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise BadSignature("malformed")
        message, expires_at, acl, mac = match.groups()
        if int(expires_at) <= now:
            raise BadSignature("expired")
        if not rest.startswith(acl + "/"):
            raise BadSignature("wrong_prefix")
        # Every secret is tried, so the time taken does not tell which matched.
        matches = [hmac.compare_digest(_digest(secret, message), mac) for secret in self.secrets]
        if not any(matches):
            raise BadSignature("forged")
