"""Liveness and readiness: /readyz checks every dependency with a short time-out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import anyio
from rq import Queue, Worker
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
    body: dict[str, object] = {"status": "ready" if ready else "unavailable", "checks": results}
    if results["redis"] == "ok":
        with contextlib.suppress(Exception):  # said above already, if Redis went since
            with anyio.fail_after(CHECK_TIMEOUT_S):
                body["pipeline"] = await anyio.to_thread.run_sync(
                    _pipeline, services.queue, abandon_on_cancel=True)
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)


def _pipeline(queue: Queue) -> dict[str, object]:
    """Jobs waiting and workers to run them. Not a condition of readiness (this
    process serves without workers), but the alert: stalled means uploads wait
    for a worker that is not there (also ``stb_queue_*`` at /metrics)."""
    queued = queue.count
    workers = Worker.count(queue=queue)
    return {"queued": queued, "workers": workers, "stalled": queued > 0 and workers == 0}


ROUTES = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
