"""What POST and PATCH /v1/channels take: each field's type and range, checked before
any database work, and turned into the Channel columns it sets."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from stb_origin.assets.channels import AUTO, PASSTHROUGH
from stb_origin.live.encoder import HEIGHTS
from stb_origin.live.listeners import ports_of
from stb_origin.live.sources import SourceError, parse_source
from stb_origin.web.errors import ApiError, missing_field_message
from stb_origin.web.jsonbody import Fields

MAX_NAME = 200
MAX_NUMBER = 99_999
MAX_SOURCES = 8
MAX_PACKAGES = 100
SEGMENT_S = (1.0, 10.0)
DVR_WINDOW_S = (0, 7 * 86_400)
KEY_ROTATION_S = (60, 86_400)  # or 0: one key
FAILOVER_AFTER_S = (2.0, 60.0)

# Field name in the API -> column of Channel.
COLUMNS = {
    "name": "name",
    "number": "number",
    "sources": "sources",
    "ladder": "ladder",
    "segment_seconds": "segment_s",
    "dvr_window_seconds": "dvr_window_s",
    "key_rotation_seconds": "key_rotation_s",
    "failover_after_seconds": "failover_after_s",
}
FIELDS = frozenset({*COLUMNS, "packages"})
# The columns a runner reads (live.channel_run.Config): a change restarts its encoder.
RUNNER_COLUMNS = frozenset({"sources", "ladder", "segment_s", "dvr_window_s",
                            "key_rotation_s", "failover_after_s"})


@dataclass(frozen=True)
class Changes:
    columns: dict[str, Any]  # Channel column -> its new value
    packages: list[str] | None  # the packages that hold it (None: unchanged)


def read_changes(body: Fields, creating: bool) -> Changes:
    """The fields present in ``body``, checked; ``creating`` requires name and sources."""
    if creating:
        for name in ("name", "sources"):
            if name not in body:
                raise _bad(missing_field_message(name, FIELDS))
    columns: dict[str, Any] = {}
    for field, column in COLUMNS.items():
        if field not in body:
            continue
        value = body.raw(field)
        if value is None and field != "number":
            raise _bad(f"{field}: may not be null")
        columns[column] = _CHECKS[field](value)
    packages = None
    if "packages" in body:
        packages = _packages(body.raw("packages"))
    return Changes(columns, packages)


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise _bad("name: expected a string")
    if not value.strip() or len(value) > MAX_NAME:
        raise _bad(f"name: 1 to {MAX_NAME} characters, not only spaces")
    if any(unicodedata.category(c) == "Cc" for c in value):
        # Stored as given, shown escaped; but a NUL or a line break in a name is a
        # mistake (and PostgreSQL refuses NUL in text).
        raise _bad("name: control characters (line breaks, tabs, NUL...) are not allowed")
    return value


def _number(value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value):
        raise _bad("number: expected an integer or null")
    assert isinstance(value, int)
    if not 1 <= value <= MAX_NUMBER:
        raise _bad(f"number: 1 to {MAX_NUMBER}")
    return value


def _sources(value: object) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SOURCES:
        raise _bad(f"sources: a list of 1 to {MAX_SOURCES} URLs, the primary first, then"
                   " the backups in the order they are tried")
    checked = []
    for n, url in enumerate(value):
        try:
            checked.append(parse_source(url).url)
        except SourceError as exc:
            raise _bad(f"sources[{n}]: {exc}") from None
    if len(set(checked)) != len(checked):
        raise _bad("sources: the same URL is listed twice")
    ports = ports_of(checked)
    if len(set(ports)) != len(ports):
        raise _bad("sources: two listeners on one port: each needs a port of its own")
    return checked


def _ladder(value: object) -> str | list[int]:
    heights = ", ".join(str(h) for h in HEIGHTS)
    if value in (AUTO, PASSTHROUGH):
        assert isinstance(value, str)
        return value
    problem = (f'ladder: "{AUTO}" (from a probe of the source), "{PASSTHROUGH}" (repackage'
               f" the source as it is) or a list of rung heights, tallest first, from:"
               f" {heights}")
    if not isinstance(value, list) or not 1 <= len(value) <= len(HEIGHTS):
        raise _bad(problem)
    if not all(_is_int(h) and h in HEIGHTS for h in value):
        raise _bad(problem)
    if any(a <= b for a, b in zip(value, value[1:], strict=False)):
        raise _bad(f"ladder: heights tallest first, each once; {problem.partition(': ')[2]}")
    return list(value)


def _seconds(field: str, low: float, high: float, *, integer: bool,
             zero_allowed: bool = False) -> Any:
    def check(value: object) -> float | int:
        kind = "an integer" if integer else "a number"
        if not (_is_int(value) if integer else _is_number(value)):
            raise _bad(f"{field}: expected {kind} of seconds")
        assert isinstance(value, int | float)
        if zero_allowed and value == 0:
            return 0
        if not low <= value <= high:
            extra = "0 (one key) or " if zero_allowed else ""
            raise _bad(f"{field}: {extra}{low:g} to {high:g} seconds")
        return int(value) if integer else float(value)

    return check


def _packages(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_PACKAGES or not all(
            isinstance(name, str) for name in value):
        raise _bad(f"packages: a list of up to {MAX_PACKAGES} package names")
    return sorted(set(value))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)  # type: ignore[arg-type]


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


_CHECKS: dict[str, Any] = {
    "name": _name,
    "number": _number,
    "sources": _sources,
    "ladder": _ladder,
    "segment_seconds": _seconds("segment_seconds", *SEGMENT_S, integer=False),
    "dvr_window_seconds": _seconds("dvr_window_seconds", *DVR_WINDOW_S, integer=True),
    "key_rotation_seconds": _seconds("key_rotation_seconds", *KEY_ROTATION_S, integer=True,
                                     zero_allowed=True),
    "failover_after_seconds": _seconds("failover_after_seconds", *FAILOVER_AFTER_S,
                                       integer=False),
}
