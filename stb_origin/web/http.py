"""From a request to what handlers need: the app's services, checked ids, JSON answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from stb_origin.db.types import ID
from stb_origin.services import Services
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE

Json = dict[str, Any]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def path_id(request: Request, name: str, what: str) -> str:
    """The id in the path, or 404 before any lookup: ids are 32 hex digits."""
    value: str = request.path_params[name]
    if not ID.fullmatch(value):
        raise ApiError(404, "not_found", f"no such {what}")
    return value


def json_response(body: Json, status: int = 200, location: str | None = None) -> JSONResponse:
    headers = dict(NO_STORE)
    if location is not None:
        headers["Location"] = location
    return JSONResponse(body, status_code=status, headers=headers)
