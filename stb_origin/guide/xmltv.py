"""XMLTV in, plain records out: the file is parsed, never trusted.

The parser is defusedxml's over the standard library's expat: it refuses, with a
named error, what XML can do to a reader (entity expansion as in "billion laughs",
external entities such as ``file:///etc/passwd``, fetching an external DTD),
instead of quietly leaving entities unexpanded as lxml's safe settings would.

One DOCTYPE is let through: ``<!DOCTYPE tv SYSTEM "xmltv.dtd">``, which nearly
every XMLTV grabber writes. It names a file, never fetched (expat here fetches
nothing), and declares nothing. Any other external DTD (a URL, a path) and any
internal subset are refused, so a hostile file learns nothing about what we
would have done with it.

Times are ``YYYYMMDDhhmmss +zzzz``. Seconds may be left out
(``YYYYMMDDhhmm``); a time without an offset is UTC (the XMLTV DTD says so).
Each time carries its own offset, so a schedule that crosses a DST change
(``+0100`` before, ``+0000`` after) comes out right in UTC with no time-zone
database. A time that cannot be read skips its programme (``bad_time``), it does
not fail the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml.ElementTree import DefusedXMLParser, iterparse

# XMLTV's own convention, a bare file name: naming it asks for nothing to be fetched.
XMLTV_DTD = "xmltv.dtd"
MAX_TEXT = 10_000  # characters of one description; longer is cut
MAX_SHORT = 500  # a title, a subtitle, a category

_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?"
                   r"\s*(?:([+-])(\d{2}):?(\d{2})|(Z|UTC|GMT))?")
_XMLTV_NS = re.compile(r"\s*(\d*)\s*(?:/\s*\d*)?\s*\.\s*(\d*)\s*(?:/\s*\d*)?\s*\.")


class XmltvError(Exception):
    """The file is not XMLTV we can read; nothing of it is imported."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def invalid(message: str, line: int | None = None) -> XmltvError:
    where = f" (line {line})" if line is not None else ""
    return XmltvError("invalid_xmltv", f"{message}{where}", line)


def unsafe(message: str, line: int | None) -> XmltvError:
    return XmltvError("unsafe_xml", f"{message} at line {line}: refused, nothing was read"
                      " from it", line)


@dataclass(frozen=True)
class Listing:
    """One <programme> as the file gives it. ``start``/``stop`` are None when the
    file's value could not be read; ``raw_start``/``raw_stop`` keep what it said."""

    xmltv_channel: str
    raw_start: str
    raw_stop: str | None
    start: datetime | None
    stop: datetime | None
    title: str
    line: int
    subtitle: str | None = None
    description: str | None = None
    categories: tuple[str, ...] = ()
    episode: str | None = None
    rating: str | None = None
    icon_url: str | None = None


@dataclass
class Document:
    channels: dict[str, str] = field(default_factory=dict)  # XMLTV id -> display name
    listings: list[Listing] = field(default_factory=list)


def parse_time(value: str) -> datetime | None:
    """``20260329013000 +0100`` as an aware UTC datetime; None if unreadable."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, sign, off_h, off_m, _utc = match.groups()
    try:
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        if offset >= timedelta(hours=24):
            return None
        zone = timezone(-offset if sign == "-" else offset)
        local = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         int(second or 0), tzinfo=zone)
    except ValueError:  # 20261301..., 25:00
        return None
    return local.astimezone(UTC)


class _LineBuilder(TreeBuilder):
    """A tree builder that notes the line each element starts on: iterparse hands
    out elements a chunk late, when the parser's position has moved on."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, int] = {}
        self.line_now = lambda: 0

    def start(self, tag: Any, attrs: Any) -> Element:
        element: Element = super().start(tag, attrs)
        self.lines[id(element)] = self.line_now()
        return element


class _Parser(DefusedXMLParser):
    """defusedxml's parser, with the line of each refusal and XMLTV's DOCTYPE allowed."""

    def __init__(self) -> None:
        self.builder = _LineBuilder()
        super().__init__(target=self.builder, forbid_dtd=True, forbid_entities=True,
                         forbid_external=True)
        self.builder.line_now = self._line

    def _line(self) -> int:
        line: int = self.parser.CurrentLineNumber
        return line

    def line_of(self, element: Element) -> int:
        return self.builder.lines.pop(id(element), 0)

    def defused_start_doctype_decl(self, name: Any, sysid: Any, pubid: Any,
                                   has_internal_subset: Any) -> None:
        if has_internal_subset:
            raise unsafe("the DOCTYPE declares an internal subset (entities)", self._line())
        if sysid is not None and sysid != XMLTV_DTD:
            raise unsafe(f"the DOCTYPE names an external DTD ({sysid[:200]!r}), which is"
                         " never fetched", self._line())

    def defused_entity_decl(self, name: Any, is_parameter_entity: Any, value: Any, base: Any,
                            sysid: Any, pubid: Any, notation_name: Any) -> None:
        kind = "an external entity" if sysid else "an entity"
        raise unsafe(f"the document declares {kind} ({name!r})", self._line())

    def defused_unparsed_entity_decl(self, name: Any, base: Any, sysid: Any, pubid: Any,
                                     notation_name: Any) -> None:
        raise unsafe(f"the document declares an unparsed entity ({name!r})", self._line())

    def defused_external_entity_ref_handler(self, context: Any, base: Any, sysid: Any,
                                            pubid: Any) -> None:
        raise unsafe("the document refers to an external resource", self._line())


def parse(path: Path) -> Document:
    """Read the XMLTV file at ``path``: its channels and programmes, in file order.
    Raises XmltvError when the file is not well-formed, unsafe, or not XMLTV."""
    document = Document()
    parser = _Parser()
    try:
        for element, line in _elements(path, parser):
            if element.tag == "channel":
                _channel(document, element, line)
            elif element.tag == "programme":
                document.listings.append(_listing(element, line))
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":", 1)[0]
        raise XmltvError("invalid_xml", f"the XML is not well-formed at line {line},"
                         f" column {column + 1}: {reason}", line) from None
    return document


def _elements(path: Path, parser: _Parser) -> Iterator[tuple[Element, int]]:
    """Each top-level <channel> and <programme> once it is complete, then let go:
    memory holds one element at a time, not the whole tree."""
    depth = 0
    root: Element | None = None
    for event, element in iterparse(str(path), events=("start", "end"), parser=parser):
        if event == "start":
            depth += 1
            if depth == 1:
                root = element
                if element.tag != "tv":
                    raise invalid(f"the root element is <{element.tag[:50]}>, not <tv>: this"
                                  " is not XMLTV", parser.line_of(element))
            continue
        depth -= 1
        line = parser.line_of(element)
        if depth == 1 and root is not None:
            yield element, line
            root.remove(element)


def _text(element: Element, tag: str, limit: int = MAX_SHORT) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    return value[:limit] or None


def _channel(document: Document, element: Element, line: int) -> None:
    xmltv_id = (element.get("id") or "").strip()
    if not xmltv_id:
        raise invalid("a <channel> has no id", line)
    document.channels[xmltv_id] = _text(element, "display-name") or xmltv_id


def _listing(element: Element, line: int) -> Listing:
    raw_start = (element.get("start") or "").strip()
    raw_stop = element.get("stop")
    icon = element.find("icon")
    rating = element.find("rating")
    return Listing(
        xmltv_channel=(element.get("channel") or "").strip(),
        raw_start=raw_start,
        raw_stop=raw_stop.strip() if raw_stop is not None else None,
        start=parse_time(raw_start),
        stop=parse_time(raw_stop) if raw_stop is not None else None,
        title=_text(element, "title") or "",
        line=line,
        subtitle=_text(element, "sub-title"),
        description=_text(element, "desc", MAX_TEXT),
        categories=tuple(c.text.strip()[:MAX_SHORT] for c in element.findall("category")
                         if c.text and c.text.strip()),
        episode=_episode(element),
        rating=_text(rating, "value", 100) if rating is not None else None,
        icon_url=_icon(icon.get("src") if icon is not None else None),
    )


def _episode(element: Element) -> str | None:
    """'S2 E5' from xmltv_ns ("1.4." counts from zero), else the onscreen text."""
    by_system = {e.get("system"): (e.text or "").strip() for e in element.findall("episode-num")}
    match = _XMLTV_NS.match(by_system.get("xmltv_ns") or "")
    if match and (match.group(1) or match.group(2)):
        parts = []
        if match.group(1):
            parts.append(f"S{int(match.group(1)) + 1}")
        if match.group(2):
            parts.append(f"E{int(match.group(2)) + 1}")
        return " ".join(parts)
    onscreen = by_system.get("onscreen")
    return onscreen[:100] if onscreen else None


def _icon(src: str | None) -> str | None:
    """Only http(s) icon URLs reach a box: a javascript: or file: "icon" is dropped."""
    if src is None:
        return None
    src = src.strip()
    return src[:2000] if src.lower().startswith(("https://", "http://")) else None
