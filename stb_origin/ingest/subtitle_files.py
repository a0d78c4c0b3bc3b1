"""Strict reading of uploaded subtitle files: SubRip (SRT) and WebVTT, to WebVTT.

A player that meets a broken cue drops it, or the rest of the file, without a
word; so a broken file is refused at upload with the line that is wrong. SRT
is converted to WebVTT (what HLS carries); WebVTT is kept as written, with its
line breaks made plain and its byte order mark dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Larger than any real subtitle file (a two-hour film's is ~100 KB); the file
# is read whole to check it.
MAX_BYTES = 4 * 1024 * 1024
ARROW = "-->"
_SRT_TIME = r"(\d{2,}):([0-5]\d):([0-5]\d),(\d{3})"
_SRT_TIMING = re.compile(rf"{_SRT_TIME} --> {_SRT_TIME}")
_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_SETTINGS = r"((?:[ \t]+[^\s:]+:[^\s:]+)*)"  # position:10% align:start ...
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}{_VTT_SETTINGS}[ \t]*")
_VTT_SIGNATURE = re.compile(r"WEBVTT(?:[ \t].*)?")
_VTT_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?")
_INDEX = re.compile(r"\d+")
# SRT styling that WebVTT has too; any other tag (<font ...>) is dropped.
_SRT_TAG = re.compile(r"<(/?)([a-zA-Z]+)[^<>]*>")
_KEPT_TAGS = frozenset({"i", "b", "u"})


class SubtitleError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: tuple[str, ...]


def srt_to_webvtt(data: bytes) -> str:
    return webvtt_text(read_srt(data))


def checked_webvtt(data: bytes) -> str:
    """The WebVTT file as it will be stored; SubtitleError if anything is wrong."""
    lines = _lines(data)
    read_webvtt_lines(lines)
    return "\n".join(lines).rstrip("\n") + "\n"


def read_srt(data: bytes) -> list[Cue]:
    lines = _lines(data)
    cues: list[Cue] = []
    n = 0
    while n < len(lines):
        if not lines[n].strip():
            n += 1
            continue
        if not _INDEX.fullmatch(lines[n].strip()):
            raise SubtitleError(n + 1, _not_timing_or("a cue number", lines[n]))
        timing = _SRT_TIMING.fullmatch(lines[n + 1].strip()) if n + 1 < len(lines) else None
        if timing is None:
            raise SubtitleError(n + 2, "expected a timing line such as"
                                " 00:00:01,000 --> 00:00:02,500")
        start, end = _ms(timing.groups()[:4]), _ms(timing.groups()[4:])
        _check_order(n + 2, start, end)
        n, text = _cue_text(lines, n + 2)
        cues.append(Cue(start, end, tuple(_srt_styling(line) for line in text)))
    if not cues:
        raise SubtitleError(1, "no cues: the file holds no subtitles")
    return cues


def read_webvtt_lines(lines: list[str]) -> list[Cue]:
    if not lines or not _VTT_SIGNATURE.fullmatch(lines[0]):
        raise SubtitleError(1, 'a WebVTT file starts with "WEBVTT"')
    n = 1
    while n < len(lines) and lines[n].strip():  # the header
        if ARROW in lines[n]:
            raise SubtitleError(n + 1, "a blank line is missing after the WEBVTT header")
        n += 1
    cues: list[Cue] = []
    while n < len(lines):
        if not lines[n].strip():
            n += 1
            continue
        if _VTT_BLOCK.fullmatch(lines[n]) and ARROW not in lines[n]:
            n = _block_end(lines, n)
            continue
        timing_at = n if ARROW in lines[n] else n + 1  # else an identifier comes first
        line = lines[timing_at] if timing_at < len(lines) else ""
        timing = _VTT_TIMING.fullmatch(line)
        if timing is None:
            problem = ("expected a timing line such as 00:00:01.000 --> 00:00:02.500"
                       if ARROW in line or timing_at == n else
                       _not_timing_or("a cue identifier and its timing line", line))
            raise SubtitleError(timing_at + 1, problem)
        start, end = _ms(timing.groups()[:4]), _ms(timing.groups()[4:8])
        _check_order(timing_at + 1, start, end)
        # WebVTT allows a cue without text (SRT does not).
        n, text = _cue_text(lines, timing_at + 1, needs_text=False)
        cues.append(Cue(start, end, tuple(text)))
    return cues


def webvtt_text(cues: list[Cue]) -> str:
    blocks = ["WEBVTT"]
    for cue in cues:
        blocks.append("\n".join([f"{_vtt_time(cue.start_ms)} {ARROW} {_vtt_time(cue.end_ms)}",
                                 *cue.text]))
    return "\n\n".join(blocks) + "\n"


def _lines(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SubtitleError(line, "not UTF-8 text: save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")
    if "\0" in text:
        raise SubtitleError(text[:text.index("\0")].count("\n") + 1, "a NUL character")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _cue_text(lines: list[str], n: int, needs_text: bool = True) -> tuple[int, list[str]]:
    """The cue's text lines from line n up to the blank line that ends it."""
    text: list[str] = []
    while n < len(lines) and lines[n].strip():
        if ARROW in lines[n]:
            raise SubtitleError(n + 1, "cue text must not contain \"-->\" (is a blank"
                                " line missing before the next cue?)")
        text.append(lines[n])
        n += 1
    if needs_text and not text:
        raise SubtitleError(n, "the cue has no text")
    return n, text


def _block_end(lines: list[str], n: int) -> int:
    while n < len(lines) and lines[n].strip():
        n += 1
    return n


def _check_order(line: int, start: int, end: int) -> None:
    if end <= start:
        raise SubtitleError(line, f"the cue ends ({_vtt_time(end)}) before it starts"
                            f" ({_vtt_time(start)})")


def _not_timing_or(expected: str, line: str) -> str:
    if ARROW in line:
        return "a timing line without its cue number before it"
    return f"expected {expected}"


def _ms(parts: tuple[str | None, ...]) -> int:
    hours, minutes, seconds, millis = (int(p) if p else 0 for p in parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def _vtt_time(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _srt_styling(line: str) -> str:
    """SRT's text as WebVTT cue text: <i>, <b>, <u> kept, other tags dropped, and
    any other "&", "<" or ">" escaped so that it shows as written."""
    out: list[str] = []
    position = 0
    for tag in _SRT_TAG.finditer(line):
        out.append(_escaped(line[position:tag.start()]))
        closing, name = tag.group(1), tag.group(2).lower()
        if name in _KEPT_TAGS:
            out.append(f"<{closing}{name}>")
        position = tag.end()
    out.append(_escaped(line[position:]))
    return "".join(out)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
