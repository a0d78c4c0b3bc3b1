from __future__ import annotations

import pytest

from stb_origin.storage.base import InvalidKey, check_key, check_prefix, guess_content_type


@pytest.mark.parametrize("key", ["a", "hls/0a/master.m3u8", "hls/%2e%2e/x", "a/..b", "a/b.",
                                 "é/ü.ts", "x" * 1024])
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", ".", "..", "../x", "a/../b", "a/..", "./a", "/a", "a/",
                                 "a//b", "a\\b", "a\x00b", "a\rb", "a\x7fb", "x" * 1025,
                                 "\udcff"])
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


@pytest.mark.parametrize("prefix", ["", "hls/", "hls/abc", "hls/abc/", "..x"])
def test_valid_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "../", "a//", "/abs", "a/./", "a\x00"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        check_prefix(prefix)


@pytest.mark.parametrize(("key", "content_type"), [
    ("a/master.m3u8", "application/vnd.apple.mpegurl"),
    ("a/SEG.M4S", "video/iso.segment"),
    ("a/init.mp4", "video/mp4"),
    ("a/s.ts", "video/mp2t"),
    ("a/s.aac", "audio/aac"),
    ("a/s.vtt", "text/vtt"),
    ("a/s.json", "application/json"),
    ("a/noext", "application/octet-stream"),
    ("a/.m3u8", "application/octet-stream"),
    ("a/x.zzzunknown", "application/octet-stream"),
])
def test_guess_content_type(key: str, content_type: str) -> None:
    assert guess_content_type(key) == content_type
