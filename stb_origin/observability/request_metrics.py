"""Request count, latency and bytes served (recorded by the access-log middleware).

Requests are labelled by route class, derived from the path: raw paths carry
asset ids and anything a scanner sends, so as label values they would make a
new series per request.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter, Histogram

from stb_origin.observability import metrics

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_class(path: str) -> str:
    if path.startswith("/hls/"):
        return "hls_playlist" if path.endswith(".m3u8") else "hls_segment"
    if path.startswith("/keys/"):
        return "keys"
    if path == "/v1/assets" or path.startswith("/v1/assets/"):
        return "ingest"
    if path in ("/healthz", "/readyz"):
        return "health"
    if path == "/metrics":
        return "metrics"
    return "other"


def record(route: str, method: str, status: int, seconds: float, sent: int) -> None:
    """Count one answered request."""
    method = method if method in _METHODS else "other"
    requests, duration, sent_bytes = _series(route, method, status)
    requests.inc()
    duration.observe(seconds)
    if sent and method != "HEAD":  # the server drops a HEAD body
        sent_bytes.inc(sent)


# labels() takes a lock and builds tuples on every call; the label values are
# few (route classes, methods, statuses), so each series is looked up once.
@functools.lru_cache(maxsize=4096)
def _series(route: str, method: str,
            status: int) -> tuple[Counter, Histogram, Counter]:
    return (metrics.HTTP_REQUESTS.labels(route, method, str(status)),
            metrics.HTTP_REQUEST_DURATION.labels(route, method, f"{status // 100}xx"),
            metrics.HTTP_RESPONSE_BYTES.labels(route))
