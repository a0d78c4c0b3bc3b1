"""Small form-encoded bodies: what OAuth endpoints and the /device and /console forms send."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 32


class FormError(ValueError):
    pass


async def read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise FormError(f"the body must be {FORM_TYPE}")
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_FORM_BYTES:
                raise FormError(f"the body is over {MAX_FORM_BYTES} bytes")
    except ClientDisconnect:
        raise FormError("the body ended early") from None
    try:
        pairs = parse_qsl(raw.decode("utf-8"), max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError:  # also bad UTF-8, raw or percent-encoded
        raise FormError("the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        # RFC 6749 §3.1: parameters must not repeat; empty ones count as absent
        # (parse_qsl drops them).
        if name in form:
            raise FormError(f"{name} is given more than once")
        form[name] = value
    return form
