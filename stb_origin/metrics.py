"""Prometheus metrics: every metric the services export is declared here, once."""

from __future__ import annotations

from prometheus_client import Counter

# The origin's in-process cache (playlists and small hot objects): hit ratio =
# hits / (hits + misses).
ORIGIN_CACHE_REQUESTS = Counter(
    "stb_origin_cache_requests_total",
    "Lookups in the origin's in-process object cache, by result (hit, miss).",
    ["result"],
)
