from __future__ import annotations

import pytest

from stb_origin.transcode.webvtt import Cue, parse_webvtt, plain_text, segment_webvtt

HEADER = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n"


def test_a_cue_over_a_boundary_is_in_both_segments_with_its_own_times() -> None:
    cues = [Cue(0.5, 1.0, "a"), Cue(1.5, 2.5, "b"), Cue(4.5, 9.0, "c")]
    assert segment_webvtt(cues, [0.0, 2.0, 4.0, 5.0], 900_000) == [
        HEADER + "00:00:00.500 --> 00:00:01.000\na\n\n00:00:01.500 --> 00:00:02.500\nb\n\n",
        HEADER + "00:00:01.500 --> 00:00:02.500\nb\n\n",
        HEADER + "00:00:04.500 --> 00:00:09.000\nc\n\n",
    ]


def test_cue_edges_on_a_boundary_belong_to_one_side() -> None:
    cues = [Cue(0.0, 2.0, "first"), Cue(2.0, 3.0, "second")]
    first, second = segment_webvtt(cues, [0.0, 2.0, 4.0], 0)
    assert "first" in first and "second" not in first
    assert "second" in second and "first" not in second


def test_an_empty_segment_is_a_header_alone_and_mpegts_wraps_at_33_bits() -> None:
    (only,) = segment_webvtt([], [0.0, 6.0], 2**33 + 5)
    assert only == "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:5,LOCAL:00:00:00.000\n\n"


def test_text_is_escaped_so_it_cannot_open_a_tag_or_forge_a_timing() -> None:
    (segment,) = segment_webvtt([Cue(1.0, 2.0, "<script> & --> 00:00:09.000")], [0.0, 4.0], 0)
    assert segment == HEADER.replace("900000", "0") + (
        "00:00:01.000 --> 00:00:02.000\n&lt;script&gt; &amp; --&gt; 00:00:09.000\n\n")
    assert parse_webvtt(segment) == [Cue(1.0, 2.0, "<script> & --> 00:00:09.000")]


def test_hours_and_milliseconds_are_written_exactly() -> None:
    (segment,) = segment_webvtt([Cue(3723.004, 3725.9996, "x")], [0.0, 4000.0], 0)
    assert "01:02:03.004 --> 01:02:06.000\n" in segment


def test_segments_round_trip_through_the_parser() -> None:
    cues = [Cue(0.25, 1.75, "one\ntwo"), Cue(1.9, 4.1, "Ünïcödé & <b>")]
    segments = segment_webvtt(cues, [0.0, 2.0, 4.0, 6.0], 0)
    seen = {c for segment in segments for c in parse_webvtt(segment)}
    assert seen == set(cues)


def test_parse_keeps_text_only() -> None:
    text = ("WEBVTT\nKind: captions\n\nNOTE a comment --> with an arrow\n\n"
            "intro\n00:01.000 --> 00:02.500 align:start line:0\n"
            "<v Roger><b>Hi</b> &amp; <i>bye</i></v>\n   \n\n"
            "00:00:03.000 --> 00:00:04.000\n\x07bell\u2028next\n")
    assert parse_webvtt(text) == [Cue(1.0, 2.5, "Hi & bye"), Cue(3.0, 4.0, "bell\nnext")]


def test_parse_moves_cues_and_drops_those_before_zero() -> None:
    text = "WEBVTT\n\n00:00.500 --> 00:01.000\ngone\n\n00:01.000 --> 00:03.000\ncut\n"
    assert parse_webvtt(text, shift_s=-1.5) == [Cue(0.0, 1.5, "cut")]


def test_cues_without_text_are_dropped() -> None:
    assert parse_webvtt("WEBVTT\n\n00:00.000 --> 00:01.000\n<b></b>\n") == []


@pytest.mark.parametrize("text, line", [
    ("WEBVTT\n\n00:00.000 --> soon\nx\n", 3),
    ("WEBVTT\n\n1\n00:00.000 -> 00:01.000\nok\n\n00:61.000 --> 00:62.000\nx\n", 7),
    ("1\n00:00:00,000 --> 00:00:01,000\nSubRip, not WebVTT\n", 1),
])
def test_a_bad_file_names_its_line(text: str, line: int) -> None:
    with pytest.raises(ValueError, match=f"^line {line}:"):
        parse_webvtt(text)


def test_plain_text_collapses_spaces_and_blank_lines() -> None:
    assert plain_text("  a \t b \n\n\n c\r") == "a b\nc"
