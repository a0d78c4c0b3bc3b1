"""Small JSON request bodies: size-bounded, one object, typed fields, no strangers."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from starlette.requests import ClientDisconnect, Request

from stb_origin.web.errors import ApiError, missing_field_message, unknown_fields_message

MAX_BODY_BYTES = 64 * 1024


async def read_object(request: Request, allowed: Collection[str]) -> Fields:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    # Only JSON: a cross-site HTML form cannot send it without a CORS preflight.
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise _too_large()
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "the body ended early") from None
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return Fields(data, allowed)


class Fields:
    def __init__(self, data: dict[str, object], allowed: Collection[str]) -> None:
        unknown = set(data) - set(allowed)
        if unknown:
            # A misspelt "valid_until" must not silently grant forever; naming the
            # allowed ones tells the caller what was meant.
            raise _bad(unknown_fields_message(unknown, allowed))
        self._data = data
        self._allowed = tuple(allowed)

    def text(self, name: str) -> str:
        value = self.optional_text(name)
        if value is None:
            raise _bad(missing_field_message(name, self._allowed) if name not in self._data
                       else f'field "{name}" is required and may not be null')
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, str):
            raise _bad(f"{name}: expected a string")
        return value

    def optional_time(self, name: str) -> datetime | None:
        value = self.optional_text(name)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise _bad(f"{name}: expected an ISO 8601 time with an offset,"
                       " e.g. 2025-01-31T00:00:00Z")
        return parsed

    def raw(self, name: str) -> object:
        return self._data.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._data


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
