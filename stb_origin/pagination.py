"""Keyset pagination parameters shared by every list endpoint: ?limit=N&after=ID."""

from __future__ import annotations

from starlette.requests import Request

from stb_origin.errors import ApiError

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
