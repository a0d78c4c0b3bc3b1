"""The origin's in-memory copy over real HTTP: hits, shared reads, expiry, takedowns, outages."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY

from stb_origin.origin import build_app, routes
from stb_origin.origin.caching import playlist_cache_control
from stb_origin.origin.objectcache import DEFAULT_MAX_OBJECT_BYTES, ObjectCache
from stb_origin.settings import SettingsError, from_env
from stb_origin.storage import LocalStorage, ObjectInfo, StorageUnavailable
from tests.support.clock import ManualClock
from tests.support.http import run_server

ASSET = "0123456789abcdef0123456789abcdef"
MASTER = f"hls/{ASSET}/master.m3u8"
SEGMENT = f"hls/{ASSET}/v1/720p/seg_00001.m4s"
BIG = f"hls/{ASSET}/v1/1080p/seg_00001.m4s"
TTL_S = 0.3


class CountingStorage(LocalStorage):
    """A folder that counts storage calls per key, can be slowed down or taken down."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.stats: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self.stat_delay_s = 0.0
        self.down = False
        self.lock = threading.Lock()

    def stat(self, key: str) -> ObjectInfo:
        if self.down:
            raise StorageUnavailable("storage is down (test)")
        with self.lock:
            self.stats[key] += 1
        time.sleep(self.stat_delay_s)
        return super().stat(key)

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if self.down:
            raise StorageUnavailable("storage is down (test)")
        with self.lock:
            self.reads[key] += 1
        yield from super().read_chunks(key, start, end, chunk_size)


@pytest.fixture
def storage(tmp_path: Path) -> CountingStorage:
    store = CountingStorage(tmp_path / "store")
    store.put_bytes(MASTER, b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv1/720p/index.m3u8\n",
                    "application/vnd.apple.mpegurl")
    store.put_bytes(SEGMENT, bytes(range(256)) * 40, "video/iso.segment")
    store.put_bytes(BIG, b"B" * (DEFAULT_MAX_OBJECT_BYTES + 1), "video/iso.segment")
    return store



@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cache(clock: ManualClock) -> ObjectCache:
    return ObjectCache(mutable_ttl_s=TTL_S, clock=clock)


@pytest.fixture
def origin(storage: CountingStorage, cache: ObjectCache) -> Iterator[httpx.Client]:
    with run_server(build_app(storage, cache=cache)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def url(key: str) -> str:
    return "/" + key


def without_date(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "date"}


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("stb_origin_cache_requests_total", {"result": result}) or 0


def test_second_request_is_a_hit(origin: httpx.Client, storage: CountingStorage) -> None:
    hits, misses = lookups("hit"), lookups("miss")
    first = origin.get(url(SEGMENT))
    second = origin.get(url(SEGMENT))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == storage.get_bytes(SEGMENT)
    assert without_date(first) == without_date(second)
    assert storage.stats[SEGMENT] == 1 and storage.reads[SEGMENT] == 2  # + get_bytes above
    assert (lookups("hit") - hits, lookups("miss") - misses) == (1, 1)


def test_cached_objects_answer_ranges_304_and_head(origin: httpx.Client,
                                                   storage: CountingStorage) -> None:
    body = origin.get(url(SEGMENT)).content
    etag = origin.get(url(SEGMENT)).headers["etag"]
    ranged = origin.get(url(SEGMENT), headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(body)}"
    assert origin.get(url(SEGMENT), headers={"If-None-Match": etag}).status_code == 304
    head = origin.head(url(SEGMENT))
    assert head.status_code == 200 and head.headers["content-length"] == str(len(body))
    assert storage.stats[SEGMENT] == 1 and storage.reads[SEGMENT] == 1


PARITY_HEADERS = [
    {}, {"Range": "bytes=3-9"}, {"Range": "bytes=-2"}, {"Range": "bytes=99999-"},
    {"If-None-Match": "ETAG"}, {"If-Match": '"other"'}, {"Range": "bytes=0-1", "If-Range": "ETAG"},
    {"If-Modified-Since": "LAST_MODIFIED"}, {"Origin": "https://player.example"},
]


def test_copies_answer_exactly_like_streamed_objects(origin: httpx.Client,
                                                     storage: CountingStorage) -> None:
    vtt = f"hls/{ASSET}/v1/subs/en.vtt"
    storage.put_bytes(vtt, b"WEBVTT\n\n", "text/vtt")
    streaming = ObjectCache(max_bytes=1 << 20, max_object_bytes=0)  # keeps nothing
    with run_server(build_app(storage, cache=streaming)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as streamed:
        for key in (MASTER, SEGMENT, vtt):
            validators = streamed.head(url(key)).headers
            origin.get(url(key))  # now held in memory
            for method in ("GET", "HEAD"):
                for headers in PARITY_HEADERS:
                    sent = {name: value.replace("ETAG", validators["etag"])
                            .replace("LAST_MODIFIED", validators["last-modified"])
                            for name, value in headers.items()}
                    expected = streamed.request(method, url(key), headers=sent)
                    got = origin.request(method, url(key), headers=sent)
                    case = (key, method, sent)
                    assert got.status_code == expected.status_code, case
                    assert without_date(got) == without_date(expected), case
                    assert got.content == expected.content, case
    assert len(streaming) == 0


def test_concurrent_misses_share_one_storage_read(origin: httpx.Client,
                                                  storage: CountingStorage) -> None:
    storage.stat_delay_s = 0.3  # every request arrives while the first read is in flight
    hits = lookups("hit")

    async def fetch_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(origin.base_url), timeout=10) as client:
            responses: list[httpx.Response] = []

            async def one() -> None:
                responses.append(await client.get(url(SEGMENT)))

            async with anyio.create_task_group() as tg:
                for _ in range(30):
                    tg.start_soon(one)
            return responses

    responses = anyio.run(fetch_all)
    assert [r.status_code for r in responses] == [200] * 30
    assert len({r.content for r in responses}) == 1
    assert storage.stats[SEGMENT] == 1 and storage.reads[SEGMENT] == 1
    assert lookups("hit") - hits == 29


def test_a_slow_storage_read_does_not_hold_other_requests(origin: httpx.Client,
                                                          storage: CountingStorage) -> None:
    origin.get(url(SEGMENT))  # cached
    storage.stat_delay_s = 1.0
    slow = threading.Thread(target=origin.get, args=(url(MASTER),))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert origin.get(url(SEGMENT)).status_code == 200
    assert time.monotonic() - started < 0.5
    slow.join()


def test_big_objects_are_streamed_each_time(origin: httpx.Client, storage: CountingStorage,
                                            cache: ObjectCache) -> None:
    for _ in range(2):
        response = origin.get(url(BIG))
        assert response.status_code == 200
        assert len(response.content) == DEFAULT_MAX_OBJECT_BYTES + 1
    assert storage.reads[BIG] == 2
    assert cache.get(BIG) is None
    ranged = origin.get(url(BIG), headers={"Range": "bytes=-4"})
    assert ranged.status_code == 206 and ranged.content == b"BBBB"


def test_playlists_are_checked_again_after_their_ttl(origin: httpx.Client,
                                                     storage: CountingStorage,
                                                     clock: ManualClock) -> None:
    first = origin.get(url(MASTER))
    origin.get(url(MASTER))
    assert storage.stats[MASTER] == 1
    clock.advance(TTL_S + 0.1)  # past the TTL
    same = origin.get(url(MASTER))
    assert same.content == first.content and same.headers["etag"] == first.headers["etag"]
    # Unchanged: a stat renewed the copy, the body was not read again.
    assert storage.stats[MASTER] == 2 and storage.reads[MASTER] == 1

    storage.put_bytes(MASTER, b"#EXTM3U\n# republished\n", "application/vnd.apple.mpegurl")
    assert origin.get(url(MASTER)).content == first.content  # within the TTL
    clock.advance(TTL_S + 0.1)  # past the TTL
    fresh = origin.get(url(MASTER))
    assert fresh.content == b"#EXTM3U\n# republished\n"
    assert fresh.headers["etag"] != first.headers["etag"]


def test_a_takedown_is_visible_within_the_ttl(origin: httpx.Client,
                                              storage: CountingStorage,
                                              clock: ManualClock) -> None:
    assert origin.get(url(MASTER)).status_code == 200
    assert origin.get(url(SEGMENT)).status_code == 200
    storage.delete_prefix(f"hls/{ASSET}/")
    clock.advance(TTL_S + 0.1)  # past the TTL
    gone = origin.get(url(MASTER))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    # An origin on its own hears of no takedown (no Redis): the immutable copy stays
    # until evicted. The app's origin evicts it on DELETE (test_takedowns.py).
    assert origin.get(url(SEGMENT)).status_code == 200


def test_storage_down_with_the_cache_in_place(origin: httpx.Client,
                                              storage: CountingStorage,
                                              clock: ManualClock) -> None:
    assert origin.get(url(MASTER)).status_code == 200
    assert origin.get(url(SEGMENT)).status_code == 200
    storage.down = True
    # Immutable copies never need storage; a playlist's copy lasts its TTL.
    assert origin.get(url(SEGMENT)).status_code == 200
    assert origin.get(url(MASTER)).status_code == 200
    clock.advance(TTL_S + 0.1)  # past the TTL
    for key in (MASTER, BIG):
        started = time.monotonic()
        response = origin.get(url(key))
        assert time.monotonic() - started < 2
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "storage_unavailable"
        assert response.headers["retry-after"] == "5"
        assert response.headers["cache-control"] == "no-store"
    storage.down = False
    assert origin.get(url(MASTER)).status_code == 200  # back, and the copy renewed by a stat
    assert storage.reads[MASTER] == 1


def test_playlist_max_age_is_configurable(tmp_path: Path) -> None:
    assert from_env({"STB_PLAYLIST_MAX_AGE_S": "7"}).playlist_max_age_s == 7
    assert from_env({}).playlist_max_age_s == 30
    store = LocalStorage(tmp_path)
    store.put_bytes(MASTER, b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    store.put_bytes(SEGMENT, b"seg", "video/iso.segment")
    with run_server(build_app(store, playlist_max_age_s=7)) as base_url:
        playlist = httpx.get(base_url + url(MASTER))
        segment = httpx.get(base_url + url(SEGMENT))
    assert playlist.headers["cache-control"] == playlist_cache_control(7)
    assert playlist.headers["cache-control"] == "public, max-age=7, stale-while-revalidate=7"
    assert segment.headers["cache-control"] == "public, max-age=31536000, immutable"
    with pytest.raises(SettingsError):
        routes(store, playlist_max_age_s=-1)


def test_a_zero_max_age_checks_playlists_every_time(tmp_path: Path) -> None:
    store = CountingStorage(tmp_path)
    store.put_bytes(MASTER, b"#EXTM3U\n", "application/vnd.apple.mpegurl")
    with run_server(build_app(store, playlist_max_age_s=0)) as base_url:
        for _ in range(3):
            assert httpx.get(base_url + url(MASTER)).status_code == 200
    assert store.stats[MASTER] == 3 and store.reads[MASTER] == 1
