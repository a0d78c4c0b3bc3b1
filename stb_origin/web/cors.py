"""CORS for web players: /hls is public, so any origin may read it; /keys and
/v1/playback take credentials, so only the origins in STB_CORS_ORIGINS may."""

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


# -- credentialed CORS: /keys and /v1/playback ------------------------------------------
#
# Web players send their bearer token to these, so "*" will not do: the browser
# needs the caller's own Origin back with Allow-Credentials, and only origins
# listed in STB_CORS_ORIGINS get it. The answers are private and never cached,
# so varying by Origin costs nothing.

CREDENTIALED_VARY = {"Vary": "Origin"}


def credentialed_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """CORS headers for an allowed Origin; just Vary for any other."""
    if origin is None or origin not in allowed:
        return dict(CREDENTIALED_VARY)
    return {
        **CREDENTIALED_VARY,
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        # A web player needs Retry-After to back off after a 429.
        "Access-Control-Expose-Headers": "Retry-After",
    }


def credentialed_preflight(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    headers = credentialed_headers(origin, allowed)
    if "Access-Control-Allow-Origin" in headers:
        headers.update({
            "Access-Control-Allow-Methods": "GET, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        })
    return headers


# -- resumable uploads (/v1/uploads, tus) -----------------------------------------------
#
# Any origin, like /hls: the bearer token travels in a header that a page must
# already hold (never a cookie the browser adds on its own), so a page without
# the token gets nothing. tus clients read these headers of every answer.
UPLOAD_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires,"
        " Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm,"
        " Stb-Asset, Retry-After"
    ),
}

UPLOAD_PREFLIGHT_HEADERS = {
    **UPLOAD_HEADERS,
    "Access-Control-Allow-Methods": "POST, HEAD, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Offset,"
        " Upload-Metadata, Upload-Checksum, Upload-Defer-Length, Upload-Concat,"
        " X-HTTP-Method-Override, X-Requested-With"
    ),
    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
}
