"""Request count, latency and bytes served, as pure ASGI middleware.

Requests are labelled by route class, derived from the path: raw paths carry
asset ids and anything a scanner sends, so as label values they would make a
new series per request.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stb_origin import metrics

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


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_class(scope["path"])
        method = scope["method"] if scope["method"] in _METHODS else "other"
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before a response
        sent = 0
        recorded = False

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_REQUEST_DURATION.labels(route, method, f"{status // 100}xx").observe(
                time.perf_counter() - started)
            if sent and method != "HEAD":  # the server drops a HEAD body
                metrics.HTTP_RESPONSE_BYTES.labels(route).inc(sent)

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # Counted before the last byte goes out: whoever has seen the
                    # whole response sees it counted at /metrics.
                    record()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            record()  # the app raised or the body never ended
