"""API errors and the handlers that turn them into JSON at the HTTP edge."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from stb_origin.db.paging import UnknownCursor

log = logging.getLogger("stb_origin.http")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def unknown_fields_message(unknown: Iterable[str], allowed: Iterable[str]) -> str:
    """'unknown field "asset_id"; allowed: asset', for every body that refuses strangers."""
    names = sorted(set(unknown))
    listed = ", ".join(f'"{name}"' for name in names)
    return (f"unknown field{'s' if len(names) > 1 else ''} {listed};"
            f" allowed: {', '.join(sorted(set(allowed)))}")


def missing_field_message(name: str, allowed: Iterable[str]) -> str:
    return f'missing required field "{name}"; allowed: {", ".join(sorted(set(allowed)))}'


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def _allowed(request: Request) -> str:
    """Every method the path answers. Starlette's 405 names those of the first
    route with the path only, and a path here often has one route per method."""
    methods: set[str] = set()
    for route in getattr(request.app, "routes", ()):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _unknown_cursor(_request: Request, exc: Exception) -> Response:
    return error_response(400, "bad_request", str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    HTTPException: _http_error,
    UnknownCursor: _unknown_cursor,
    Exception: _unexpected,
}
