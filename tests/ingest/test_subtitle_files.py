"""Strict SRT and WebVTT reading: good files come out as WebVTT, a broken one is
refused with the line that is wrong."""

from __future__ import annotations

import pytest

from stb_origin.ingest.subtitle_files import (
    SubtitleError,
    checked_webvtt,
    srt_to_webvtt,
)

SRT = (
    "1\r\n"
    "00:00:00,500 --> 00:00:02,000\r\n"
    "<i>Hello</i> & <font color=\"red\">welcome</font>\r\n"
    "\r\n"
    "2\r\n"
    "00:00:02,250 --> 01:02:03,004\r\n"
    "two lines, a < b\r\n"
    "second line\r\n"
)


def test_srt_becomes_webvtt_with_its_times_text_and_styling() -> None:
    assert srt_to_webvtt(SRT.encode()) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.500 --> 00:00:02.000\n"
        "<i>Hello</i> &amp; welcome\n"
        "\n"
        "00:00:02.250 --> 01:02:03.004\n"
        "two lines, a &lt; b\n"
        "second line\n")


def test_a_byte_order_mark_and_trailing_blank_lines_are_fine() -> None:
    vtt = srt_to_webvtt(b"\xef\xbb\xbf" + SRT.encode() + b"\r\n\r\n\r\n")
    assert vtt == srt_to_webvtt(SRT.encode())


@pytest.mark.parametrize("text, line, problem", [
    ("1\n00:00:01.000 --> 00:00:02,000\nhi\n", 2, "expected a timing line"),
    ("1\n00:00:01,000 -> 00:00:02,000\nhi\n", 2, "expected a timing line"),
    ("1\n00:00:03,000 --> 00:00:02,000\nhi\n", 2,
     "the cue ends (00:00:02.000) before it starts (00:00:03.000)"),
    ("1\n00:00:01,000 --> 00:00:02,000\nhi\n2\n00:00:03,000 --> 00:00:04,000\nho\n", 5,
     "a blank line missing"),
    ("1\n00:00:01,000 --> 00:00:02,000\nsee --> there\n", 3, 'must not contain "-->"'),
    ("1\n00:00:01,000 --> 00:00:02,000\n\n", 2, "the cue has no text"),
    ("Hello\n00:00:01,000 --> 00:00:02,000\nhi\n", 1, "expected a cue number"),
    ("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n00:00:03,000 --> 00:00:04,000\nho\n", 5,
     "a timing line without its cue number"),
    ("", 1, "no cues"),
])
def test_a_broken_srt_names_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(SubtitleError) as raised:
        srt_to_webvtt(text.encode())
    assert raised.value.line == line
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"line {line}: ")


def test_text_that_is_not_utf8_names_its_line() -> None:
    data = SRT.encode().replace(b"second line", "zweite Zeile für".encode("latin-1"))
    with pytest.raises(SubtitleError, match="^line 8: not UTF-8"):
        srt_to_webvtt(data)


VTT = """WEBVTT - with a title
Kind: captions

NOTE made by hand

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.500 align:start position:10%
<v Narrator>Hello</v>

00:00:03.000 --> 00:00:04.000

"""


def test_webvtt_is_kept_as_written() -> None:
    assert checked_webvtt(VTT.replace("\n", "\r\n").encode()) == VTT.rstrip("\n") + "\n"


@pytest.mark.parametrize("text, line, problem", [
    ("WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n", 1, 'starts with "WEBVTT"'),
    ("1\n00:00:01,000 --> 00:00:02,000\nhi\n", 1, 'starts with "WEBVTT"'),
    ("WEBVTT\n00:01.000 --> 00:02.000\nhi\n", 2, "blank line is missing after the WEBVTT"),
    ("WEBVTT\n\n00:01,000 --> 00:02.000\nhi\n", 3, "expected a timing line"),
    ("WEBVTT\n\n00:02.000 --> 00:01.000\nhi\n", 3, "ends (00:00:01.000) before it starts"),
    ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n00:03.000 --> 00:04.000\n", 5,
     'must not contain "-->"'),
    ("WEBVTT\n\nintro\nhello\n", 4, "expected a cue identifier and its timing line"),
])
def test_a_broken_webvtt_names_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(SubtitleError) as raised:
        checked_webvtt(text.encode())
    assert raised.value.line == line
    assert problem in str(raised.value)
