"""Text that reaches a playlist cannot add a line, an attribute or a path outside
the version prefix, whatever it holds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stb_origin.packager.playlists import (
    IFrameEntry,
    InitSection,
    MediaSegment,
    VariantEntry,
    master_playlist,
    media_playlist,
    rewrite_master_uris,
)

IV = bytes(16)
HOSTILE = st.text(st.sampled_from(list('ab/.:#" \r\n\t,=%\\') + ["\u2028", "\x85", "é"]),
                  max_size=20)
PLAIN = st.from_regex(r"[a-z0-9_]{1,8}(/[a-z0-9_]{1,8}){0,2}\.m3u8", fullmatch=True)
URI = st.one_of(PLAIN, HOSTILE, PLAIN.map(lambda u: "../" + u), PLAIN.map(lambda u: "/" + u),
                PLAIN.map(lambda u: "https://evil.example/" + u))


def _variant(uri: str, codecs: str = "avc1.64001f,mp4a.40.2") -> VariantEntry:
    return VariantEntry(uri=uri, bandwidth=1_000_000, average_bandwidth=900_000,
                        codecs=codecs, width=1280, height=720, frame_rate=25.0)


def _lines_as_written(text: str) -> list[str]:
    # Every line break a player might honour, not only "\n".
    return re.split(r"\r\n|[\r\n\x85\u2028\u2029]", text)


@settings(max_examples=200)
@given(uri=URI, key_uri=URI)
def test_a_media_playlist_holds_each_uri_on_a_line_of_its_own(uri, key_uri):
    try:
        text = media_playlist([MediaSegment(uri, 4.0, key_uri, IV)],
                              InitSection(uri, key_uri, IV))
    except ValueError:
        return
    lines = _lines_as_written(text)
    assert lines.count(uri) == 1, "the segment URI is one whole line"
    assert sum(line.startswith("#EXT-X-KEY:") for line in lines) == 2
    assert f'URI="{key_uri}"' in text and key_uri.count('"') == 0


@settings(max_examples=200)
@given(uri=URI, codecs=HOSTILE, key=URI)
def test_a_master_playlist_holds_each_value_where_it_belongs(uri, codecs, key):
    try:
        text = master_playlist([_variant(uri, codecs or "avc1")],
                               [IFrameEntry(uri, 100_000, 90_000, "avc1", 1280, 720)],
                               session_key_uri=key)
    except ValueError:
        return
    lines = _lines_as_written(text)
    assert lines.count(uri) == 1
    assert sum(line.startswith("#EXT-X-STREAM-INF:") for line in lines) == 1
    assert sum(line.startswith("#EXT-X-I-FRAME-STREAM-INF:") for line in lines) == 1
    assert len([line for line in lines if line and not line.startswith("#")]) == 1


@settings(max_examples=200)
@given(uri=URI, prefix=st.from_regex(r"v[0-9a-f]{1,12}/", fullmatch=True))
def test_rewritten_uris_stay_relative_and_inside_the_version_prefix(uri, prefix):
    try:
        master = master_playlist([_variant(uri)],
                                 [IFrameEntry(uri, 100_000, 90_000, "avc1", 1280, 720)])
        text = rewrite_master_uris(master, prefix)
    except ValueError:
        return
    variant_uris = [line for line in _lines_as_written(text) if line and not line.startswith("#")]
    iframe_uris = re.findall(r'URI="([^"]*)"', text)
    for rewritten in [*variant_uris, *iframe_uris]:
        assert rewritten.startswith(prefix)
        assert ".." not in rewritten.split("/") and "://" not in rewritten
    assert len(variant_uris) == 1 and len(iframe_uris) == 1


@pytest.mark.parametrize("uri", ["../v0/x.m3u8", "/hls/x.m3u8", "https://evil/x.m3u8",
                                 "a/../../x.m3u8", "%2e%2E/x.m3u8"])
def test_rewriting_refuses_a_uri_that_would_leave_the_prefix(uri):
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n" + uri + "\n"
    with pytest.raises(ValueError):
        rewrite_master_uris(master, "v1/")
