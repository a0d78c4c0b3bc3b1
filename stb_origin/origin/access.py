"""Who may fetch /hls from the origin: the CDN, and holders of a signed URL.

- ``origin_secrets`` (STB_ORIGIN_SECRETS): when set, every /hls request must
  carry one of them in ``X-Origin-Secret``, which only the CDN sends (the first
  is current; the others are still accepted while the CDN moves over). Direct
  requests would bypass the CDN's cache and its own checks.
- URL signing (STB_URL_SIGNING_SECRETS): when on, /hls answers only under a
  valid ``/hls/st=.../`` segment (``playback.urlsign``). The CDN checks the
  same token before it serves from its cache; the origin checks it again for
  what reaches it, so it is safe without a CDN in front too.

Both checks are pure CPU on the request (no database, no Redis): they run on
every segment request. /keys is not behind the origin secret: every key request
is authorised, audited and rate limited on its own, and key URIs may name a
host that is not behind the CDN (STB_KEY_URI_BASE).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from stb_origin.origin.urlsign import SEGMENT, BadSignature, UrlSigner
from stb_origin.settings import Settings

ORIGIN_SECRET_HEADER = "x-origin-secret"


@dataclass(frozen=True)
class HlsAccess:
    origin_secrets: tuple[str, ...] = field(default=(), repr=False)
    url_signer: UrlSigner = field(default_factory=lambda: UrlSigner(()))
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(cls, settings: Settings) -> HlsAccess:
        return cls(origin_secrets=settings.origin_secrets,
                   url_signer=UrlSigner(settings.url_signing_secrets))

    def refusal(self, request: Request) -> str | None:
        """Why this request may not have the file, or None."""
        if self.origin_secrets and not self._from_cdn(request.headers.get(ORIGIN_SECRET_HEADER)):
            return "this origin answers the CDN only"
        if self.url_signer.enabled:
            token = request.path_params.get("token")
            if token is None:
                return "a valid signed URL is required (unsigned)"
            rest = f"{request.path_params['asset_id']}/{request.path_params['path']}"
            try:
                self.url_signer.verify(SEGMENT + token, rest, self.clock())
            except BadSignature as exc:
                return str(exc)
        return None

    def _from_cdn(self, sent: str | None) -> bool:
        if sent is None:
            return False
        # Header values arrive decoded as latin-1: back to the bytes nginx sent.
        value = sent.encode("latin-1")
        matches = [hmac.compare_digest(value, secret.encode()) for secret in self.origin_secrets]
        return any(matches)
