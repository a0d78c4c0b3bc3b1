"""Under granian (the production server) the folder backend's big immutable objects
are sent by the server itself (ASGI pathsend): same bytes, same headers, counted."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import httpx
import pytest

from stb_origin.origin.objectcache import DEFAULT_MAX_OBJECT_BYTES
from stb_origin.settings import Settings
from stb_origin.storage import open_storage
from tests.support.http import serve_process

# Bigger than what the origin keeps in memory: the file is streamed on every request.
SIZE = DEFAULT_MAX_OBJECT_BYTES + 123_457


@pytest.fixture
def granian(settings: Settings) -> Iterator[str]:
    with serve_process(settings, "granian") as (_process, base_url):
        yield base_url


def _metric(base_url: str, sample: str) -> float:
    """One sample of /metrics, e.g. 'stb_origin_cache_requests_total{result="hit"}'."""
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


_BYTES = 'stb_http_response_bytes_total{route="hls_segment"}'
_HITS = 'stb_origin_cache_requests_total{result="hit"}'


def test_big_segments_are_sent_by_the_server_with_the_same_bytes_and_headers(
        settings: Settings, granian: str) -> None:
    asset_id = secrets.token_hex(16)
    data = os.urandom(SIZE)
    open_storage(settings).put_bytes(f"hls/{asset_id}/v1/720p/seg_00001.m4s", data,
                                     "video/iso.segment")
    url = f"{granian}/hls/{asset_id}/v1/720p/seg_00001.m4s"
    before = _metric(granian, _BYTES)

    whole = httpx.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-length"] == str(SIZE)
    assert whole.headers["content-type"] == "video/iso.segment"
    assert "immutable" in whole.headers["cache-control"]
    assert whole.headers["etag"]
    assert _metric(granian, _BYTES) - before == SIZE

    # Ranges and conditional requests keep their own answers.
    part = httpx.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == data[100:200]
    assert httpx.get(url, headers={"If-None-Match": whole.headers["etag"]},
                     timeout=30).status_code == 304


def test_small_segments_are_kept_in_memory_from_their_second_request(
        settings: Settings, granian: str) -> None:
    asset_id = secrets.token_hex(16)
    data = os.urandom(1_000_000)
    storage = open_storage(settings)
    key = f"hls/{asset_id}/v1/720p/seg_00002.m4s"
    storage.put_bytes(key, data, "video/iso.segment")
    url = f"{granian}/{key}"
    hits = _metric(granian, _HITS)

    # 1st: the server sends the file; 2nd: read into memory; 3rd: from memory.
    for _ in range(3):
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200 and response.content == data
    assert _metric(granian, _HITS) - hits == 1
    # From memory now: the file going away does not change the answer.
    (settings.data_dir / "storage" / key).unlink()
    assert httpx.get(url, timeout=30).content == data
