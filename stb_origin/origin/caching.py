"""Cache-Control policy for what the origin serves, as the CDN and boxes see it."""

from __future__ import annotations

from stb_origin.origin.paths import HlsPath
from stb_origin.web import headers as web_headers

# Playlists are the switch for an asset: a takedown or a republish changes or
# removes them, so they may be cached only briefly. max-age plus
# stale-while-revalidate bounds how long a box can keep seeing an old playlist:
# 30 + 30 s, so a takedown reaches every box within a minute.
# STB_PLAYLIST_MAX_AGE_S changes it (tests shorten it rather than wait).
PLAYLIST_MAX_AGE_S = 30


def playlist_cache_control(max_age_s: int) -> str:
    return f"public, max-age={max_age_s}, stale-while-revalidate={max_age_s}"


PLAYLIST_CACHE_CONTROL = playlist_cache_control(PLAYLIST_MAX_AGE_S)
# Segments and init sections under a version prefix never change once published.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# A miss is cached briefly so that a flood of requests for something absent
# (a typo in a box build, a scan, an asset taken down) is absorbed by the CDN,
# while an asset published a moment later (master playlist written last) shows
# up within seconds.
NOT_FOUND_CACHE_CONTROL = "public, max-age=10"
# Outages and range/precondition failures are about this request only.
NO_STORE = web_headers.NO_STORE["Cache-Control"]


def is_immutable(target: HlsPath) -> bool:
    """Media under a version prefix: a new publish is a new prefix, so the bytes
    behind such a name never change. Playlists anywhere, and anything outside a
    version prefix, may change."""
    return target.is_versioned and not target.is_playlist


def cache_control(target: HlsPath, playlist_max_age_s: int = PLAYLIST_MAX_AGE_S) -> str:
    if is_immutable(target):
        return IMMUTABLE_CACHE_CONTROL
    return playlist_cache_control(playlist_max_age_s)
