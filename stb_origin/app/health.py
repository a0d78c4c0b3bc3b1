"""Liveness and readiness: /readyz checks every dependency with a short time-out."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import services_of

CHECK_TIMEOUT_S = 5.0


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


async def readyz(request: Request) -> Response:
    services = services_of(request)
    checks: dict[str, Callable[[], object]] = {
        "redis": services.redis.ping,
        "storage": services.storage.check,
        "database": services.db.check,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            with anyio.fail_after(CHECK_TIMEOUT_S):
                await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which kind only
            results[name] = f"unavailable ({type(exc).__name__})"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": results},
                        status_code=200 if ready else 503,
                        headers=NO_STORE)


ROUTES = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
