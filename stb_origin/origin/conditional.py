"""Conditional and range requests (RFC 9110 §13 and §14) as pure functions.

The route feeds them header values and the object's validators; they decide
304 / 412 / 206 / 416 and never touch storage or the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

# An entity tag is W/"..." or "..."; commas may appear inside the quotes.
_ETAG = re.compile(r'\s*((?:W/)?"[^"]*")\s*(?:,|$)')
# 19 digits fit in 64 bits and keep int() away from huge inputs.
_RANGE_SPEC = re.compile(r"(\d{0,19})-(\d{0,19})")


# -- dates ---------------------------------------------------------------------------


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """IMF-fixdate, RFC 850 and asctime forms; None for anything unparsable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (ValueError, TypeError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _seconds(moment: datetime) -> datetime:
    # HTTP dates have one-second resolution; compare at that resolution.
    return moment.astimezone(UTC).replace(microsecond=0)


# -- entity tags ---------------------------------------------------------------------


def parse_etags(header: str) -> list[str] | None:
    """Entity tags of an If-Match / If-None-Match value; ["*"] for a star;
    None when the value is malformed (and so to be ignored)."""
    value = header.strip()
    if value == "*":
        return ["*"]
    tags: list[str] = []
    pos = 0
    while pos < len(value):
        match = _ETAG.match(value, pos)
        if match is None:
            return None
        tags.append(match.group(1))
        pos = match.end()
    return tags or None


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def weak_match(a: str, b: str) -> bool:
    return _opaque(a) == _opaque(b)


def strong_match(a: str, b: str) -> bool:
    return not a.startswith("W/") and not b.startswith("W/") and a == b


# -- preconditions -------------------------------------------------------------------


def evaluate_preconditions(
    method: str,
    etag: str,
    last_modified: datetime,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
) -> int | None:
    """412, 304 or None (go on), in the order of RFC 9110 §13.2.2.

    If-None-Match takes precedence over If-Modified-Since: when it is present,
    the date is not looked at.
    """
    safe = method.upper() in ("GET", "HEAD")
    if if_match is not None:
        tags = parse_etags(if_match)
        if tags is not None and tags != ["*"] and not any(strong_match(t, etag) for t in tags):
            return 412
    elif (since := parse_http_date(if_unmodified_since)) and _seconds(last_modified) > since:
        return 412
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        if tags is not None and (tags == ["*"] or any(weak_match(t, etag) for t in tags)):
            return 304 if safe else 412
    elif (safe and (since := parse_http_date(if_modified_since))
          and _seconds(last_modified) <= since):
        return 304
    return None


def if_range_allows(if_range: str | None, etag: str, last_modified: datetime) -> bool:
    """Whether a Range may be honoured: no If-Range, or it still names this
    representation (strong entity-tag match, or exactly its Last-Modified)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"'):
        return strong_match(value, etag)
    if value.startswith("W/"):
        return False  # weak tags never validate a range
    date = parse_http_date(value)
    return date is not None and date == _seconds(last_modified)


# -- ranges --------------------------------------------------------------------------


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, like the header

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for {size} bytes")
        self.size = size

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to send, or None to send the whole representation.

    None covers: no header, another unit, a malformed value (RFC 9110 lets a
    server ignore Range), and several ranges: players and CDNs ask for one,
    and a full 200 is always a correct answer, so multipart/byteranges is not
    produced. Raises RangeNotSatisfiable for a single range that starts at or
    past the end, or a zero-length suffix.
    """
    if header is None:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    items = [item.strip() for item in specs.split(",") if item.strip()]
    if len(items) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(items[0])
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix: the last n bytes
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        if size == 0:
            return None
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid, so ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = size - 1 if last == "" else min(int(last), size - 1)
    return ByteRange(start, end)
