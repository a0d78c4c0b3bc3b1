"""CORS for web players: /hls is public, so any origin may read it."""

from __future__ import annotations

# The allowed origin is always "*", never the caller's Origin echoed back, so
# responses do not vary by Origin and carry no `Vary: Origin`: adding it would
# only split the CDN cache per web site for identical bytes.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Cache-Control, Age"
    ),
}

PREFLIGHT_MAX_AGE_S = 86400

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    # The same list whatever the preflight asks, so no Vary on its request headers.
    "Access-Control-Allow-Headers": (
        "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since"
    ),
    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
    "Cache-Control": f"public, max-age={PREFLIGHT_MAX_AGE_S}",
}
