"""Paging at the HTTP edge, the same for every list: ?limit=N&after=ID in,
{"items": [...], "next": url-or-null} out (the rows come from ``db.paging``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE

DEFAULT_PAGE = 20
MAX_PAGE = 100


def page_params(request: Request) -> tuple[int, str | None]:
    try:
        limit = int(request.query_params.get("limit", str(DEFAULT_PAGE)))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be an integer") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "bad_request", f"limit must be between 1 and {MAX_PAGE}")
    return limit, request.query_params.get("after") or None


def paged(items: list[dict[str, Any]], limit: int, path: str, cursor: str,
          filters: dict[str, str | None] | None = None) -> JSONResponse:
    """``items`` holds up to limit + 1 entries: the extra one says there is more."""
    return JSONResponse(page_body(items, limit, path, cursor, filters), headers=NO_STORE)


def page_body(items: list[dict[str, Any]], limit: int, path: str, cursor: str,
              filters: dict[str, str | None] | None = None) -> dict[str, Any]:
    """{"items", "next"} of ``paged``, for an answer that sets its own headers."""
    more = len(items) > limit
    items = items[:limit]
    next_url = None
    if more:
        query = {k: v for k, v in (filters or {}).items() if v is not None}
        query.update(limit=str(limit), after=str(items[-1][cursor]))
        next_url = f"{path}?{urlencode(query)}"
    return {"items": items, "next": next_url}
