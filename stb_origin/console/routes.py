"""Every route of the console."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin.console import signin, static, tokens
from stb_origin.console.visit import bundle


async def static_file(request: Request) -> Response:
    return static.serve(bundle(), request)


ROUTES = [
    *signin.ROUTES,
    Route("/console/token", tokens.mint, methods=["POST"]),
    Route(static.PREFIX + "/{build}/{path:path}", static_file, methods=["GET"]),
]
