"""Access log, request ids and request metrics, in one pure ASGI middleware
(one wrapper per request: bench/origin_vs_nginx.py showed middleware layers
costing more than the origin's own work on a cached playlist).

The request id comes from the CDN (``X-Request-ID``) when it is well formed,
else a fresh one; it is echoed in the response and, with the asset id the
path names, added to every log line written while the request is handled.
The query string is never logged: ``?token=`` carries credentials.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stb_origin.observability import logs, request_metrics
from stb_origin.observability.request_metrics import route_class

log = logging.getLogger("stb_origin.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# /hls/{id}/..., /keys/{id}/..., /v1/assets/{id}: the paths that name one asset.
_ASSET_PATH = re.compile(r"^/(?:hls|keys|v1/assets)/([0-9a-f]{32})(?:/|$)")
# A signed URL's token segment (/hls/st=.../{id}/...): a credential, never logged.
_URL_TOKEN = re.compile(r"^/hls/st=[^/]*/")
_CREATED = re.compile(rb"^/v1/assets/([0-9a-f]{32})$")


def request_id_of(scope: Scope) -> str:
    incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
    if _REQUEST_ID.match(incoming):
        return incoming
    # A request id only ties log lines together: it need not be unguessable, and
    # os.urandom is a system call on every request (random reseeds after a fork).
    return f"{random.getrandbits(64):016x}"


def loggable_path(path: str) -> str:
    return _URL_TOKEN.sub("/hls/st=<redacted>/", path, count=1)


def asset_id_of(path: str) -> str | None:
    path = _URL_TOKEN.sub("/hls/", path, count=1)
    match = _ASSET_PATH.match(path)
    return match.group(1) if match else None


def _log_request(line: dict[str, object]) -> None:
    """``log.info("request", extra=line)`` without its search of the call stack
    for the caller's file and line: under an ASGI server that stack is deep,
    and the walk cost more than the rest of the line."""
    if log.isEnabledFor(logging.INFO):
        log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "request", (), None,
                                  extra=line))


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        asset_id = asset_id_of(scope["path"])
        route = route_class(scope["path"])
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before a response
        sent = 0
        announced = b"0"  # Content-Length, for a body the server sends itself
        recorded = False

        def count() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                request_metrics.record(route, scope["method"], status,
                                       time.perf_counter() - started, sent)

        async def observing_send(message: Message) -> None:
            nonlocal status, sent, asset_id, announced
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                if asset_id is None:  # an upload names its new asset in Location
                    location = dict(headers).get(b"location", b"")
                    if created := _CREATED.match(location):
                        asset_id = created.group(1).decode()
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
                announced = dict(headers).get(b"content-length", b"0")
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    # Counted before the last byte goes out: whoever has seen the
                    # whole response sees it counted at /metrics.
                    count()
            elif message["type"] == "http.response.pathsend":  # the server sends the file
                sent += int(announced)
                count()
            await send(message)

        fields = {"request_id": request_id}
        if asset_id is not None:
            fields["asset_id"] = asset_id
        # If the app raises, the ids stay bound on purpose: Starlette's outermost
        # middleware logs the error after we return, in this same task, and the
        # server runs each request in a task of its own.
        bound = logs.bind(**fields)
        try:
            await self.app(scope, receive, observing_send)
            logs.unbind(bound)
        finally:
            count()  # the app raised or the body never ended
            line = {
                "request_id": request_id, "method": scope["method"],
                "path": loggable_path(scope["path"]),
                "route": route, "status": status,
                "bytes": 0 if scope["method"] == "HEAD" else sent,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
            if asset_id is not None:
                line["asset_id"] = asset_id
            _log_request(line)
