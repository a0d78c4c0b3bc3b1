"""The origin over a real uvicorn server, on both storage backends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from stb_origin.origin import build_app, routes
from stb_origin.origin.caching import (
    IMMUTABLE_CACHE_CONTROL,
    NOT_FOUND_CACHE_CONTROL,
    PLAYLIST_CACHE_CONTROL,
)
from stb_origin.origin.conditional import http_date
from stb_origin.origin.masters import filtered
from stb_origin.origin.objectcache import ObjectCache
from stb_origin.storage import LocalStorage, ObjectNotFound, Storage, open_storage
from tests.origin.conftest import s3_settings
from tests.origin.test_masters import MASTER as LADDER_MASTER
from tests.support.http import run_server
from tests.support.s3server import start_moto

ASSET = "0123456789abcdef0123456789abcdef"
SEGMENT = bytes(range(256)) * 4 + b"tail" * 4  # 1040 bytes
SIZE = len(SEGMENT)
SECRET = b"TOP-SECRET-KEY-MATERIAL"

FILES = {
    "master.m3u8": (b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv1/720p/index.m3u8\n",
                    "application/vnd.apple.mpegurl"),
    "v1/720p/index.m3u8": (b"#EXTM3U\n#EXTINF:4,\nseg_00001.m4s\n",
                           "application/vnd.apple.mpegurl"),
    "v1/720p/init.mp4": (b"init-section", "video/mp4"),
    "v1/720p/seg_00001.m4s": (SEGMENT, "video/iso.segment"),
    "v1/ts/seg_00001.ts": (b"G" * 188, "video/mp2t"),
    "v1/audio/seg_00001.aac": (b"aac", "audio/aac"),
    "v1/subs/en.vtt": (b"WEBVTT\n", "text/vtt; charset=utf-8"),
    "v1/thumbs.jpg": (b"\xff\xd8\xff\xe0thumbs", "image/jpeg"),
    "loose.m4s": (b"unversioned", "video/iso.segment"),
}
SEG_URL = f"/hls/{ASSET}/v1/720p/seg_00001.m4s"
MASTER_URL = f"/hls/{ASSET}/master.m3u8"
# Every answer below also holds for objects served from the origin's in-memory
# copy; its playlists are kept this long here (seconds by default).
PLAYLIST_COPY_TTL_S = 0.2


@pytest.fixture(scope="module")
def client(storage: Storage) -> Iterator[httpx.Client]:
    """The origin over ``storage`` (fs or s3) with one asset published."""
    for path, (data, _type) in FILES.items():
        storage.put_bytes(f"hls/{ASSET}/{path}", data, "application/octet-stream")
    storage.put_bytes(f"hls/{ASSET}/v1/keys/key.bin", SECRET, "application/octet-stream")
    storage.put_bytes(f"hls/{ASSET}/%2e%2e/x.m3u8", SECRET, "application/vnd.apple.mpegurl")
    storage.put_bytes("secrets/kek", SECRET, "application/octet-stream")
    app = build_app(storage, cache=ObjectCache(mutable_ttl_s=PLAYLIST_COPY_TTL_S))
    with run_server(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert SECRET not in response.content


# -- content ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES)
def test_serves_each_type(client: httpx.Client, path: str) -> None:
    data, content_type = FILES[path]
    response = client.get(f"/hls/{ASSET}/{path}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["access-control-allow-origin"] == "*"


def test_validators(client: httpx.Client, storage: Storage) -> None:
    info = storage.stat(f"hls/{ASSET}/v1/720p/seg_00001.m4s")
    response = client.get(SEG_URL)
    assert response.headers["etag"] == info.etag
    assert response.headers["last-modified"] == http_date(info.last_modified)
    assert response.headers["last-modified"].endswith(" GMT")


def test_large_object_streams(client: httpx.Client, storage: Storage) -> None:
    big = bytes(range(251)) * 12000  # ~3 MB, several storage chunks
    storage.put_bytes(f"hls/{ASSET}/v1/720p/seg_00002.m4s", big, "video/iso.segment")
    response = client.get(f"/hls/{ASSET}/v1/720p/seg_00002.m4s")
    assert response.status_code == 200
    assert response.content == big


# -- conditional requests --------------------------------------------------------------


@pytest.mark.parametrize("template", [
    "{etag}", '"nope", {etag}', "W/{etag}", "*", '"a", W/{etag} , "b"'])
def test_if_none_match_gives_304(client: httpx.Client, template: str) -> None:
    etag = client.get(SEG_URL).headers["etag"]
    response = client.get(SEG_URL, headers={"If-None-Match": template.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == IMMUTABLE_CACHE_CONTROL
    assert "content-range" not in response.headers


def test_if_none_match_mismatch_gives_200(client: httpx.Client) -> None:
    response = client.get(SEG_URL, headers={"If-None-Match": '"other", W/"x"'})
    assert response.status_code == 200
    assert response.content == SEGMENT


def test_if_modified_since(client: httpx.Client) -> None:
    last_modified = client.get(SEG_URL).headers["last-modified"]
    assert client.get(SEG_URL, headers={"If-Modified-Since": last_modified}).status_code == 304
    old = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert client.get(SEG_URL, headers={"If-Modified-Since": old}).status_code == 200
    assert client.get(SEG_URL, headers={"If-Modified-Since": "garbage"}).status_code == 200


def test_if_none_match_takes_precedence(client: httpx.Client) -> None:
    last_modified = client.get(SEG_URL).headers["last-modified"]
    response = client.get(SEG_URL, headers={"If-None-Match": '"stale"',
                                            "If-Modified-Since": last_modified})
    assert response.status_code == 200
    assert response.content == SEGMENT


def test_if_match_mismatch_gives_412(client: httpx.Client) -> None:
    assert_json_error(client.get(SEG_URL, headers={"If-Match": '"stale"'}), 412,
                      "precondition_failed")
    etag = client.get(SEG_URL).headers["etag"]
    assert client.get(SEG_URL, headers={"If-Match": etag}).status_code == 200


# -- ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-0", 0, 0),
    ("bytes=10-19", 10, 19),
    ("bytes=1000-", 1000, SIZE - 1),
    ("bytes=-10", SIZE - 10, SIZE - 1),
    ("bytes=-99999", 0, SIZE - 1),
    ("bytes=1030-99999", 1030, SIZE - 1),
    (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
    ("BYTES = 5-6", 5, 6),
])
def test_single_range_gives_206(client: httpx.Client, header: str, start: int,
                                end: int) -> None:
    response = client.get(SEG_URL, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.content == SEGMENT[start:end + 1]
    assert response.headers["content-type"] == "video/iso.segment"
    assert response.headers["cache-control"] == IMMUTABLE_CACHE_CONTROL


@pytest.mark.parametrize("header", [
    "bytes=0-1,5-6",         # several ranges: full 200 by design
    "bytes=abc", "bytes=5-1", "items=0-1", "bytes", "bytes=", "bytes=--1", "bytes=1-2-3",
    "bytes=0-" + "9" * 30,
])
def test_ignored_ranges_give_full_200(client: httpx.Client, header: str) -> None:
    response = client.get(SEG_URL, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == SEGMENT
    assert "content-range" not in response.headers


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_gives_416(client: httpx.Client, header: str) -> None:
    response = client.get(SEG_URL, headers={"Range": header})
    assert_json_error(response, 416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.headers["cache-control"] == "no-store"


def test_if_range(client: httpx.Client) -> None:
    first = client.get(SEG_URL)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    ranged = {"Range": "bytes=0-3"}

    assert client.get(SEG_URL, headers={**ranged, "If-Range": etag}).status_code == 206
    assert client.get(SEG_URL, headers={**ranged, "If-Range": last_modified}).status_code == 206
    for stale in ['"stale"', "W/" + etag, "Sat, 01 Jan 2000 00:00:00 GMT", "garbage"]:
        response = client.get(SEG_URL, headers={**ranged, "If-Range": stale})
        assert response.status_code == 200, stale
        assert response.content == SEGMENT


def test_if_range_follows_an_overwrite(client: httpx.Client, storage: Storage) -> None:
    url = f"/hls/{ASSET}/v1/720p/rewritten.m3u8"
    storage.put_bytes(f"hls/{ASSET}/v1/720p/rewritten.m3u8", b"#EXTM3U\n", "x/y")
    etag = client.get(url).headers["etag"]
    storage.put_bytes(f"hls/{ASSET}/v1/720p/rewritten.m3u8", b"#EXTM3U\n# new\n", "x/y")
    time.sleep(PLAYLIST_COPY_TTL_S)  # the origin's copy of a playlist is checked again after this
    response = client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert response.status_code == 200
    assert response.content == b"#EXTM3U\n# new\n"


# -- HEAD, CORS, cache policy ----------------------------------------------------------


def test_head_matches_get_without_body(client: httpx.Client) -> None:
    get = client.get(SEG_URL)
    head = client.head(SEG_URL)
    assert head.status_code == 200
    assert head.content == b""
    for name in ["content-type", "content-length", "etag", "last-modified", "cache-control",
                 "accept-ranges", "access-control-allow-origin"]:
        assert head.headers[name] == get.headers[name], name
    # Range is defined for GET only.
    ranged = client.head(SEG_URL, headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 200
    assert ranged.headers["content-length"] == str(SIZE)


def test_head_of_missing_is_404(client: httpx.Client) -> None:
    response = client.head(f"/hls/{ASSET}/v9/none.m4s")
    assert response.status_code == 404
    assert response.content == b""


def test_cors_preflight(client: httpx.Client) -> None:
    response = client.options(SEG_URL, headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "range" in response.headers["access-control-allow-headers"].lower()
    assert int(response.headers["access-control-max-age"]) > 0


def test_cors_on_responses(client: httpx.Client) -> None:
    response = client.get(SEG_URL, headers={"Origin": "https://player.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = response.headers["access-control-expose-headers"].lower()
    for name in ["content-length", "content-range", "etag"]:
        assert name in exposed
    assert "origin" not in response.headers.get("vary", "").lower()
    missing = client.get(f"/hls/{ASSET}/none.m3u8", headers={"Origin": "https://x.example"})
    assert missing.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(("path", "policy"), [
    ("master.m3u8", PLAYLIST_CACHE_CONTROL),
    ("v1/720p/index.m3u8", PLAYLIST_CACHE_CONTROL),
    ("v1/720p/seg_00001.m4s", IMMUTABLE_CACHE_CONTROL),
    ("v1/720p/init.mp4", IMMUTABLE_CACHE_CONTROL),
    ("v1/subs/en.vtt", IMMUTABLE_CACHE_CONTROL),
    ("v1/thumbs.jpg", IMMUTABLE_CACHE_CONTROL),
    ("loose.m4s", PLAYLIST_CACHE_CONTROL),
])
def test_cache_control(client: httpx.Client, path: str, policy: str) -> None:
    assert client.get(f"/hls/{ASSET}/{path}").headers["cache-control"] == policy


def test_missing_object_is_cached_briefly(client: httpx.Client) -> None:
    response = client.get(f"/hls/{ASSET}/v9/none.m4s")
    assert_json_error(response, 404, "not_found")
    assert response.headers["cache-control"] == NOT_FOUND_CACHE_CONTROL


def test_other_methods_are_405_json(client: httpx.Client) -> None:
    assert_json_error(client.post(SEG_URL, content=b"x"), 405, "method_not_allowed")
    assert_json_error(client.delete(SEG_URL), 405, "method_not_allowed")


# -- filtered masters (origin.masters) ---------------------------------------------------

LADDER = "fedcba9876543210fedcba9876543210"


@pytest.fixture(scope="module")
def ladder(storage: Storage) -> str:
    """An asset with a packaged ladder: /hls/{LADDER}/ ."""
    storage.put_bytes(f"hls/{LADDER}/master.m3u8", LADDER_MASTER, "application/vnd.apple.mpegurl")
    return f"/hls/{LADDER}/"


def test_a_filtered_master_is_served_like_a_playlist(client: httpx.Client, ladder: str) -> None:
    full = client.get(ladder + "master.m3u8")
    small = client.get(ladder + "master.h720.m3u8")
    assert small.status_code == 200
    assert small.content == filtered(LADDER_MASTER, "master.h720.m3u8").body
    assert small.headers["content-type"] == full.headers["content-type"]
    assert small.headers["cache-control"] == PLAYLIST_CACHE_CONTROL
    assert small.headers["last-modified"] == full.headers["last-modified"]
    assert small.headers["access-control-allow-origin"] == "*"
    # Each form is a representation of its own.
    etags = {client.get(ladder + name).headers["etag"]
             for name in ("master.m3u8", "master.h720.m3u8", "master.h1080.m3u8")}
    assert len(etags) == 3
    etag = small.headers["etag"]
    assert client.get(ladder + "master.h720.m3u8",
                      headers={"If-None-Match": etag}).status_code == 304
    assert client.get(ladder + "master.h1080.m3u8",
                      headers={"If-None-Match": etag}).status_code == 200
    head = client.head(ladder + "master.h720.m3u8")
    assert head.headers["content-length"] == str(len(small.content)) and head.content == b""
    ranged = client.get(ladder + "master.h720.m3u8", headers={"Range": "bytes=0-6"})
    assert ranged.status_code == 206 and ranged.content == b"#EXTM3U"


def test_other_spellings_of_a_form_redirect_to_its_one_url(client: httpx.Client,
                                                           ladder: str) -> None:
    for asked, canonical in [("master.h1000.m3u8", "master.h720.m3u8"),
                             ("master.h4320.m3u8", "master.m3u8")]:
        response = client.get(ladder + asked)
        assert response.status_code == 301
        # Relative: it stays under whatever prefix (a signed-URL segment) was asked.
        assert response.headers["location"] == canonical
        assert response.headers["cache-control"] == PLAYLIST_CACHE_CONTROL


def test_a_form_with_nothing_to_play_or_without_a_master_is_404(client: httpx.Client,
                                                                ladder: str) -> None:
    assert_json_error(client.get(ladder + "master.h100.m3u8"), 404, "not_found")
    assert_json_error(client.get(f"/hls/{'9' * 32}/master.h720.m3u8"), 404, "not_found")
    # A media playlist is no master: its forms are not made.
    assert_json_error(client.get(f"/hls/{ASSET}/v1/720p/master.h720.m3u8"), 404, "not_found")


# -- path tricks -----------------------------------------------------------------------


TRICKS = [
    f"/hls/{ASSET}/../../etc/passwd",
    f"/hls/{ASSET}/../../secrets/kek",
    f"/hls/{ASSET}/v1/../../../secrets/kek",
    f"/hls/{ASSET}/..%2f..%2fsecrets%2fkek",
    f"/hls/{ASSET}/%2e%2e/%2e%2e/secrets/kek",
    f"/hls/{ASSET}/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    f"/hls/{ASSET}/%252e%252e/%252e%252e/secrets/kek",
    f"/hls/{ASSET}/%2e%2e/x.m3u8",
    f"/hls/{ASSET}/%252e%252e/x.m3u8",
    f"/hls/{ASSET}/v1%2f720p%2fseg_00001.m4s",
    f"/hls/{ASSET}//etc/passwd",
    f"/hls/{ASSET}///secrets/kek",
    "//etc/passwd",
    "/hls//etc/passwd",
    f"/hls/{ASSET}/v1\\..\\..\\master.m3u8",
    f"/hls/{ASSET}/..\\..\\secrets\\kek",
    f"/hls/{ASSET}/master.m3u8%00.ts",
    f"/hls/{ASSET}/%00",
    f"/hls/{ASSET}/v1/keys/key.bin",
    f"/hls/{ASSET}/./master.m3u8",
    f"/hls/{ASSET}/.hidden.m3u8",
    f"/hls/{ASSET}/v1/720p/",
    f"/hls/{ASSET}/",
    f"/hls/{ASSET.upper()}/master.m3u8",
    f"/hls/{ASSET}0/master.m3u8",
    "/hls/../secrets/kek",
    "/hls/..%2fsecrets/kek.m3u8",
    "/hls/not-an-id/master.m3u8",
    f"/hls/{ASSET}/a/b/c/d/e.m4s",
]


@pytest.mark.parametrize("target", TRICKS)
def test_path_tricks_never_serve_files(client: httpx.Client, target: str) -> None:
    # The "target" extension sends the request-target byte for byte: httpx would
    # otherwise resolve the dot segments itself.
    response = client.get(SEG_URL, extensions={"target": target.encode()})
    assert response.status_code in (400, 404)
    assert SECRET not in response.content
    assert b"root:" not in response.content
    assert b"#EXTM3U" not in response.content
    if response.status_code == 404:
        assert_json_error(response, 404, "not_found")
        assert str(Path.cwd()) not in response.text


def test_raw_nul_is_refused(client: httpx.Client) -> None:
    # No HTTP client sends a raw NUL, so speak HTTP/1.1 over a plain socket.
    url = httpx.URL(str(client.base_url))
    with socket.create_connection((url.host, url.port or 80), timeout=5) as sock:
        sock.sendall(f"GET /hls/{ASSET}/a\x00.m3u8 HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.split(b" ", 2)[1] in (b"400", b"404")
    assert SECRET not in reply


# -- storage trouble -------------------------------------------------------------------


def test_storage_down_gives_503_quickly(tmp_path: Path) -> None:
    server = start_moto()
    try:
        storage = open_storage(s3_settings(server))
        storage.put_bytes(f"hls/{ASSET}/master.m3u8", b"#EXTM3U\n", "x/y")
    finally:
        server.stop()
    with run_server(build_app(storage)) as base_url:
        started = time.monotonic()
        response = httpx.get(base_url + MASTER_URL, timeout=30)
        elapsed = time.monotonic() - started
    assert_json_error(response, 503, "storage_unavailable")
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"
    assert elapsed < 5
    assert server.endpoint not in response.text


class FlakyStorage(LocalStorage):
    """A folder whose reads misbehave after a successful stat."""

    def __init__(self, root: Path, mode: str) -> None:
        super().__init__(root)
        self.mode = mode
        self.closed = threading.Event()

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if self.mode == "vanished":
            raise ObjectNotFound(key)
        try:
            if self.mode == "short":
                yield b"only this"
                return
            while True:  # "endless": more than any client will read
                yield b"x" * 65536
                time.sleep(0.001)
        finally:
            self.closed.set()


def test_object_vanished_after_stat_is_404(tmp_path: Path) -> None:
    storage = FlakyStorage(tmp_path, "vanished")
    storage.put_bytes(f"hls/{ASSET}/master.m3u8", b"#EXTM3U\n", "x/y")
    with run_server(build_app(storage)) as base_url:
        response = httpx.get(base_url + MASTER_URL)
    assert_json_error(response, 404, "not_found")


def test_short_object_aborts_the_response(tmp_path: Path) -> None:
    storage = FlakyStorage(tmp_path, "short")
    storage.put_bytes(f"hls/{ASSET}/master.m3u8", b"#EXTM3U\n" * 100, "x/y")
    with run_server(build_app(storage)) as base_url, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(base_url + MASTER_URL)
    assert storage.closed.wait(5)


def test_client_going_away_closes_the_storage_read(tmp_path: Path) -> None:
    storage = FlakyStorage(tmp_path, "endless")
    storage.put_bytes(f"hls/{ASSET}/v1/seg.ts", b"x" * (1 << 30 >> 4), "x/y")
    with run_server(build_app(storage)) as base_url:
        with httpx.stream("GET", base_url + f"/hls/{ASSET}/v1/seg.ts") as response:
            assert response.status_code == 200
            next(response.iter_raw())
        assert storage.closed.wait(5)


# -- composition -----------------------------------------------------------------------


def test_routes_compose_into_another_app(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes(f"hls/{ASSET}/master.m3u8", b"#EXTM3U\n", "x/y")

    async def health(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/health", health), *routes(storage)])
    with run_server(app) as base_url:
        assert httpx.get(base_url + "/health").text == "ok"
        response = httpx.get(base_url + MASTER_URL)
    assert response.status_code == 200
    assert response.headers["cache-control"] == PLAYLIST_CACHE_CONTROL
