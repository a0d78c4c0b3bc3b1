from __future__ import annotations

import pytest

from stb_origin.origin.caching import (
    IMMUTABLE_CACHE_CONTROL,
    PLAYLIST_CACHE_CONTROL,
    PLAYLIST_MAX_AGE_S,
    cache_control,
)
from stb_origin.origin.paths import HlsPath, parse_hls_path

ASSET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("path", "key", "content_type"), [
    ("master.m3u8", f"hls/{ASSET}/master.m3u8", "application/vnd.apple.mpegurl"),
    ("v1/720p/seg_00001.m4s", f"hls/{ASSET}/v1/720p/seg_00001.m4s", "video/iso.segment"),
    ("v1/720p/init.mp4", f"hls/{ASSET}/v1/720p/init.mp4", "video/mp4"),
    ("v1/seg-1.ts", f"hls/{ASSET}/v1/seg-1.ts", "video/mp2t"),
    ("v1/a.aac", f"hls/{ASSET}/v1/a.aac", "audio/aac"),
    ("v1/en.vtt", f"hls/{ASSET}/v1/en.vtt", "text/vtt"),
    ("v1/thumbs.jpg", f"hls/{ASSET}/v1/thumbs.jpg", "image/jpeg"),
])
def test_served_paths(path: str, key: str, content_type: str) -> None:
    target = parse_hls_path(ASSET, path, f"/hls/{ASSET}/{path}".encode())
    assert target is not None
    assert target.key == key
    assert target.content_type == content_type


@pytest.mark.parametrize(("asset_id", "path"), [
    (ASSET, ""), (ASSET, "/"), (ASSET, "../x.m3u8"), (ASSET, "v1/../x.m3u8"),
    (ASSET, "./x.m3u8"), (ASSET, ".x.m3u8"), (ASSET, "-x.m3u8"), (ASSET, "v1//x.m4s"),
    (ASSET, "/etc/passwd"), (ASSET, "v1\\x.m4s"), (ASSET, "x.m3u8\x00"), (ASSET, "x\x00.m3u8"),
    (ASSET, "key.bin"), (ASSET, "x.M3U8"), (ASSET, "m3u8"), (ASSET, "x.m3u8/"),
    (ASSET, "a/b/c/d/e.m4s"), (ASSET, "x" * 200 + ".ts"), (ASSET, "%2e%2e/x.m3u8"),
    (ASSET, "é.m3u8"), (ASSET, "x .m3u8"),
    (ASSET.upper(), "x.m3u8"), (ASSET[:-1], "x.m3u8"), (ASSET + "0", "x.m3u8"),
    ("..", "x.m3u8"), ("", "x.m3u8"),
])
def test_refused_paths(asset_id: str, path: str) -> None:
    assert parse_hls_path(asset_id, path) is None


def test_any_escape_in_the_raw_target_is_refused() -> None:
    assert parse_hls_path(ASSET, "master.m3u8", f"/hls/{ASSET}/master.m3u8".encode())
    assert parse_hls_path(ASSET, "master.m3u8", f"/hls/{ASSET}/m%61ster.m3u8".encode()) is None
    assert parse_hls_path(ASSET, "v1/x.m4s", f"/hls/{ASSET}/v1%2Fx.m4s".encode()) is None


@pytest.mark.parametrize(("parts", "policy"), [
    (("master.m3u8",), PLAYLIST_CACHE_CONTROL),
    (("v1", "720p", "index.m3u8"), PLAYLIST_CACHE_CONTROL),
    (("v1", "720p", "seg_1.m4s"), IMMUTABLE_CACHE_CONTROL),
    (("v1", "init.mp4"), IMMUTABLE_CACHE_CONTROL),
    (("seg_1.ts",), PLAYLIST_CACHE_CONTROL),
])
def test_cache_control(parts: tuple[str, ...], policy: str) -> None:
    assert cache_control(HlsPath(ASSET, parts)) == policy


def test_playlist_staleness_is_bounded_by_a_minute() -> None:
    assert f"max-age={PLAYLIST_MAX_AGE_S}" in PLAYLIST_CACHE_CONTROL
    directives = dict(d.strip().partition("=")[::2] for d in PLAYLIST_CACHE_CONTROL.split(","))
    assert int(directives["max-age"]) + int(directives.get("stale-while-revalidate", 0)) <= 60
