"""The HTTP app as `stb-origin serve` builds it, for ASGI servers other than uvicorn.

    granian --interface asgi --factory asgi_factory:create   (run from bench/)
    uvicorn --factory asgi_factory:bare                        (the ceiling, see bare())

Settings come from the environment (STB_*), logging is configured the same way,
so the only difference from `stb-origin serve` is the server.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

import stb_origin.asgi
from stb_origin.observability import logs
from stb_origin.origin.routes import build_app
from stb_origin.settings import from_env
from stb_origin.storage import open_storage

# The app exactly as `stb-origin serve --server granian` builds it.
create = stb_origin.asgi.create


def bare() -> ASGIApp:
    """No framework, no storage: bodies of the sizes the real objects have, from memory.

    The most any app can get out of the server: the ceiling the origin's
    figures are measured against (BENCH_PLAYLIST_BYTES for *.m3u8,
    BENCH_SEGMENT_BYTES for anything else).
    """
    playlist = b"#" * int(os.environ.get("BENCH_PLAYLIST_BYTES", "2000"))
    segment = b"\0" * int(os.environ.get("BENCH_SEGMENT_BYTES", "1000000"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = playlist if scope["path"].endswith(".m3u8") else segment
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def origin_only() -> Starlette:
    """The origin's routes alone (origin.routes.build_app): no access log, no request
    metrics, no other apps. Next to create(), it shows what the middleware costs."""
    logs.configure()
    settings = from_env()
    return build_app(open_storage(settings), playlist_max_age_s=settings.playlist_max_age_s)
