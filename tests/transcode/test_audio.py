from __future__ import annotations

import pytest

from stb_origin.transcode.audio import (
    AAC_GROUP,
    EC3_GROUP,
    MAX_LABEL,
    clean_label,
    plan_audio,
    unique_labels,
)
from stb_origin.transcode.languages import bcp47, language_name
from tests.transcode.support import track


def test_every_track_is_aac_and_multichannel_ones_also_ec3() -> None:
    planned = plan_audio([
        track(1, language="eng", title="English", default=False),
        track(2, language="fre", title=None, default=True),
        track(3, language="ger", channels=1),
        track(4, language="eng", title="English", channels=8, sample_rate=44_100),
    ])
    assert [(a.name, a.group, a.codec, a.source_index, a.channels, a.bitrate) for a in planned] == [
        ("audio0_aac", AAC_GROUP, "aac", 1, 2, 128_000),
        ("audio1_aac", AAC_GROUP, "aac", 2, 2, 128_000),
        ("audio2_aac", AAC_GROUP, "aac", 3, 1, 64_000),
        ("audio3_aac", AAC_GROUP, "aac", 4, 2, 128_000),
        ("audio3_ec3", EC3_GROUP, "eac3", 4, 6, 384_000),
    ]
    assert [a.language for a in planned] == ["en", "fr", "de", "en", "en"]
    assert [a.label for a in planned] == ["English", "French", "German", "English 2", "English"]
    # The source's default in the AAC group; the only (so the first) member of the E-AC-3 one.
    assert [a.default for a in planned] == [False, True, False, False, True]
    assert [a.sample_rate for a in planned] == [48_000] * 3 + [44_100, 48_000]


def test_the_first_track_is_default_when_the_source_marks_none() -> None:
    planned = plan_audio([track(1, default=False), track(2, default=False)])
    assert [a.default for a in planned] == [True, False]


def test_no_tracks_no_audio() -> None:
    assert plan_audio([]) == ()


@pytest.mark.parametrize("language,title,label", [
    (None, None, "Audio"),
    ("und", None, "Audio"),
    ("qaa", None, "qaa"),  # a well-formed tag without a name we know
    ("spa", "  ", "Spanish"),  # a blank title is no title
    ("eng", 'Director\'s "Cut"\ncommentary', "Director's 'Cut' commentary"),
])
def test_labels(language: str | None, title: str | None, label: str) -> None:
    (planned,) = plan_audio([track(1, language=language, title=title)])
    assert planned.label == label


@pytest.mark.parametrize("hostile,clean", [
    ('a"b', "a'b"),
    ("line\r\nbreak", "line break"),
    ("para\u2029graph\u2028sep\x85nel", "para graph sep nel"),
    ("bidi\u202eevil\u200b", "bidi evil"),
    ("tab\tand\x00nul\x7fdel", "tab and nul del"),
    ("\ud800lone surrogate", "lone surrogate"),
    ("  spaced   out  ", "spaced out"),
    ("\n\"\n", "'"),
    ("\n\t\u2028", None),
    ("", None),
    (None, None),
    ("Français", "Français"),
])
def test_clean_label(hostile: str | None, clean: str | None) -> None:
    assert clean_label(hostile) == clean


def test_clean_label_is_bounded() -> None:
    assert clean_label("x" * 1000) == "x" * MAX_LABEL
    assert clean_label("ab " * 100) == ("ab " * 100)[:MAX_LABEL].rstrip()


def test_unique_labels() -> None:
    assert unique_labels(["A", "B", "A", "A"]) == ["A", "B", "A 2", "A 3"]
    long = "y" * MAX_LABEL
    assert unique_labels([long, long]) == [long, "y" * (MAX_LABEL - 2) + " 2"]


@pytest.mark.parametrize("tag,normal", [
    ("eng", "en"), ("fre", "fr"), ("fra", "fr"), ("ger", "de"), ("deu", "de"),
    ("EN", "en"), ("en-us", "en-US"), ("zh_hant_tw", "zh-Hant-TW"), ("chi-Hans", "zh-Hans"),
    ("fil", "fil"),  # no two-letter code: the three-letter one is the BCP-47 tag
    ("und", None), ("mul", None), ("zxx", None), (None, None), ("", None),
    ('en"', None), ("en\nfr", None), ("english", None), ("e", None), ("en-" + "x" * 40, None),
])
def test_bcp47(tag: str | None, normal: str | None) -> None:
    assert bcp47(tag) == normal


def test_language_name() -> None:
    assert language_name("fr-CA") == "French"
    assert language_name("fil") is None
    assert language_name(None) is None
