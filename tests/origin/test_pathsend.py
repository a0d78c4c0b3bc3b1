"""Under granian (the production server) the folder backend's big immutable objects
are sent by the server itself (ASGI pathsend): same bytes, same headers, counted."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from stb_origin.origin.objectcache import DEFAULT_MAX_OBJECT_BYTES
from stb_origin.settings import Settings
from stb_origin.storage import open_storage
from tests.e2e.stack import free_port

# Bigger than what the origin keeps in memory: the file is streamed on every request.
SIZE = DEFAULT_MAX_OBJECT_BYTES + 123_457


@pytest.fixture
def granian(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "STB_DATA_DIR": str(settings.data_dir),
           "STB_REDIS_URL": str(settings.redis_url)}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.data_dir / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "stb_origin.cli", "serve",
                                    "--port", str(port), "--server", "granian"],
                                   env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "granian did not start\n" + log_path.read_text()
            try:
                if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _bytes_served(base_url: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    match = re.search(r'^stb_http_response_bytes_total\{route="hls_segment"\} (\S+)$', text,
                      re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_big_segments_are_sent_by_the_server_with_the_same_bytes_and_headers(
        settings: Settings, granian: str) -> None:
    asset_id = secrets.token_hex(16)
    data = os.urandom(SIZE)
    open_storage(settings).put_bytes(f"hls/{asset_id}/v1/720p/seg_00001.m4s", data,
                                     "video/iso.segment")
    url = f"{granian}/hls/{asset_id}/v1/720p/seg_00001.m4s"
    before = _bytes_served(granian)

    whole = httpx.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-length"] == str(SIZE)
    assert whole.headers["content-type"] == "video/iso.segment"
    assert "immutable" in whole.headers["cache-control"]
    assert whole.headers["etag"]
    assert _bytes_served(granian) - before == SIZE

    # Ranges and conditional requests keep their own answers.
    part = httpx.get(url, headers={"Range": "bytes=100-199"}, timeout=30)
    assert part.status_code == 206 and part.content == data[100:200]
    assert httpx.get(url, headers={"If-None-Match": whole.headers["etag"]},
                     timeout=30).status_code == 304


def _cache(base_url: str, result: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    match = re.search(rf'^stb_origin_cache_requests_total\{{result="{result}"\}} (\S+)$', text,
                      re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_small_segments_are_kept_in_memory_from_their_second_request(
        settings: Settings, granian: str) -> None:
    asset_id = secrets.token_hex(16)
    data = os.urandom(1_000_000)
    storage = open_storage(settings)
    key = f"hls/{asset_id}/v1/720p/seg_00002.m4s"
    storage.put_bytes(key, data, "video/iso.segment")
    url = f"{granian}/{key}"
    hits = _cache(granian, "hit")

    # 1st: the server sends the file; 2nd: read into memory; 3rd: from memory.
    for _ in range(3):
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200 and response.content == data
    assert _cache(granian, "hit") - hits == 1
    # From memory now: the file going away does not change the answer.
    (settings.data_dir / "storage" / key).unlink()
    assert httpx.get(url, timeout=30).content == data
