"""Takedowns: a deleted asset leaves every origin process's memory, over real Redis and HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from redis import Redis
from starlette.applications import Starlette

from stb_origin.app import create_app
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id
from stb_origin.origin.objectcache import CachedObject, ObjectCache
from stb_origin.origin.objects import Objects
from stb_origin.origin.takedowns import Takedowns, announce, asset_of
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.storage import LocalStorage, ObjectInfo, ObjectNotFound
from tests.support.clock import ManualClock
from tests.support.http import run_server

# How long another process may take to stop serving a deleted asset.
PROPAGATION_S = 2.0



def cached(key: str, immutable: bool = True) -> CachedObject:
    info = ObjectInfo(key=key, size=3, etag='"1"', last_modified=datetime(2024, 1, 1, tzinfo=UTC),
                      content_type="video/iso.segment")
    return CachedObject(info, b"abc", immutable, 0.0)


def key_of(asset_id: str, path: str = "v1/360p/seg_00000.m4s") -> str:
    return f"hls/{asset_id}/{path}"


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def dead_redis() -> Redis:
    """A client for a port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)


def test_asset_of_reads_only_asset_keys() -> None:
    assert asset_of("hls/abc/v1/x.m4s") == "abc"
    assert asset_of("hls/abc/master.m3u8") == "abc"
    assert asset_of("hls/abc") is None
    assert asset_of("sources/abc/source.mp4") is None


def test_another_process_evicts_the_asset_and_refuses_to_keep_it(redis: Redis) -> None:
    down, kept = new_id(), new_id()
    here, there = Takedowns(redis), Takedowns(redis)
    cache = ObjectCache()
    there.attach(cache)
    there.sync()
    for key in (key_of(down), key_of(down, "master.m3u8"), key_of(kept)):
        cache.put(cached(key))

    here.take_down(down)
    assert here.is_down(down) and not there.is_down(down)  # not heard of yet
    there.sync()
    assert there.is_down(down) and not there.is_down(kept)
    assert cache.get(key_of(down)) is None and cache.get(key_of(down, "master.m3u8")) is None
    assert cache.get(key_of(kept)) is not None
    # A read that began before the takedown cannot put the copy back.
    cache.put(cached(key_of(down)), there.covers)
    assert cache.get(key_of(down)) is None


def test_a_process_started_after_the_takedown_still_refuses_it(redis: Redis) -> None:
    asset_id = new_id()
    Takedowns(redis).take_down(asset_id)
    late = Takedowns(redis)
    late.sync()
    assert late.is_down(asset_id)


def test_a_process_that_missed_trimmed_takedowns_drops_every_copy(redis: Redis) -> None:
    behind = Takedowns(redis, kept=2)
    cache = ObjectCache()
    behind.attach(cache)
    behind.sync()
    unrelated = key_of(new_id())
    cache.put(cached(unrelated))
    for _ in range(3):  # the first falls out of the two Redis keeps
        announce(redis, new_id(), kept=2)
    behind.sync()
    assert cache.get(unrelated) is None


def test_a_redis_that_lost_its_data_drops_every_copy(redis: Redis) -> None:
    takedowns = Takedowns(redis)
    cache = ObjectCache()
    takedowns.attach(cache)
    takedowns.take_down(new_id())
    takedowns.sync()
    cache.put(cached(key_of(new_id())))
    redis.flushdb()
    takedowns.sync()
    assert len(cache) == 0


def test_memory_is_trusted_only_while_takedowns_are_heard(redis: Redis) -> None:
    clock = ManualClock()
    takedowns = Takedowns(redis, stale_after_s=2.0, clock=clock)
    assert not takedowns.current()  # never heard
    takedowns.sync()
    assert takedowns.current()
    clock.now += 2.5
    assert not takedowns.current()

    unreachable = Takedowns(dead_redis(), clock=clock)
    with pytest.raises(Exception, match="(?i)connect"):
        unreachable.sync()
    assert not unreachable.current()


def test_without_redis_immutable_copies_are_checked_against_storage(tmp_path: Path) -> None:
    clock = ManualClock()
    storage = LocalStorage(tmp_path / "store")
    asset_id = new_id()
    key = key_of(asset_id)
    storage.put_bytes(key, b"segment", "video/iso.segment")
    cache = ObjectCache(mutable_ttl_s=2.0, clock=clock)
    objects = Objects(storage, cache, Takedowns(dead_redis(), clock=clock))

    async def find() -> bytes | None:
        return (await objects.find(key, True)).body

    assert anyio.run(find) == b"segment"
    storage.delete_prefix(f"hls/{asset_id}/")
    assert anyio.run(find) == b"segment"  # within the playlist TTL
    clock.now += 2.5
    with pytest.raises(ObjectNotFound):
        anyio.run(find)


class GatedStorage(LocalStorage):
    """A folder whose reads wait at a gate, to hold a read in flight."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reading = threading.Event()
        self.gate = threading.Event()

    def stat(self, key: str) -> ObjectInfo:
        info = super().stat(key)
        self.reading.set()
        if not self.gate.wait(10):
            raise TimeoutError("the test never opened the gate")
        return info


def test_a_read_in_flight_during_the_takedown_is_refused(tmp_path: Path, redis: Redis) -> None:
    storage = GatedStorage(tmp_path / "store")
    asset_id = new_id()
    key = key_of(asset_id)
    storage.put_bytes(key, b"segment", "video/iso.segment")
    takedowns = Takedowns(redis)
    cache = ObjectCache()
    objects = Objects(storage, cache, takedowns)
    outcomes: list[object] = []

    async def request() -> None:
        try:
            outcomes.append((await objects.find(key, True)).body)
        except ObjectNotFound as exc:
            outcomes.append(exc)

    async def scenario() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(3):  # one leader, two waiting on its single flight
                tasks.start_soon(request)
            await anyio.to_thread.run_sync(storage.reading.wait, 10)
            await anyio.to_thread.run_sync(takedowns.take_down, asset_id)
            storage.gate.set()

    anyio.run(scenario)
    assert len(outcomes) == 3 and all(isinstance(o, ObjectNotFound) for o in outcomes)
    assert cache.get(key) is None


# Over HTTP: two app instances (two uvicorn servers, each with its own services
# and memory) on the same Redis, database and storage.

ASSET_FILES = {
    "master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv1/360p/index.m3u8\n",
    "v1/360p/index.m3u8": b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\nseg_00000.m4s\n',
    "v1/360p/init.mp4": b"init-section",
    "v1/360p/seg_00000.m4s": b"segment" * 100,
}


def publish(services: Services) -> str:
    asset_id = new_id()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title="t", source_key=f"sources/{asset_id}/source.mp4",
                          status="ready", version="v1"))
    for path, data in ASSET_FILES.items():
        services.storage.put_bytes(f"hls/{asset_id}/{path}", data, "application/octet-stream")
    return asset_id


def statuses(client: httpx.Client, asset_id: str) -> list[int]:
    return [client.get(f"/hls/{asset_id}/{path}").status_code for path in ASSET_FILES]


@pytest.fixture
def two_origins(settings: Settings) -> Iterator[tuple[Services, httpx.Client, httpx.Client]]:
    with ExitStack() as stack:
        clients = []
        first: Services | None = None
        for _ in range(2):
            services = build_services(settings)
            stack.callback(services.close)
            first = first or services
            # lifespan on: the takedown watcher runs as under `stb-origin serve`.
            base_url = stack.enter_context(run_server(create_app(services), lifespan="on"))
            clients.append(stack.enter_context(httpx.Client(base_url=base_url, timeout=10)))
        assert first is not None
        yield first, clients[0], clients[1]


def test_after_delete_no_origin_serves_the_asset(
        two_origins: tuple[Services, httpx.Client, httpx.Client]) -> None:
    services, here, there = two_origins
    asset_id = publish(services)
    for client in (here, there):
        for _ in range(2):  # the second answer comes from memory
            assert statuses(client, asset_id) == [200] * len(ASSET_FILES)
    token = services.signer.issue(["assets:write"])

    deleted = here.delete(f"/v1/assets/{asset_id}", headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    deleted_at = time.monotonic()
    # The process that handled the DELETE refuses at once.
    assert statuses(here, asset_id) == [404] * len(ASSET_FILES)
    while (seen := statuses(there, asset_id)) != [404] * len(ASSET_FILES):
        assert time.monotonic() - deleted_at < PROPAGATION_S, f"still served: {seen}"
        time.sleep(0.05)
    gone = there.get(f"/hls/{asset_id}/v1/360p/seg_00000.m4s")
    assert gone.json()["error"]["code"] == "not_found"
    # An asset nobody deleted is still served by both.
    other = publish(services)
    assert statuses(here, other) == statuses(there, other) == [200] * len(ASSET_FILES)


def test_delete_without_redis_is_refused_and_deletes_nothing(api: str, app: Starlette,
                                                            services: Services) -> None:
    asset_id = publish(services)
    app.state.takedowns.redis = dead_redis()
    token = services.signer.issue(["assets:write"])
    response = httpx.delete(f"{api}/v1/assets/{asset_id}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "nothing was deleted" in response.json()["error"]["message"]
    assert len(list(services.storage.list_keys(f"hls/{asset_id}/"))) == len(ASSET_FILES)
    with httpx.Client(base_url=api, timeout=10) as client:
        assert statuses(client, asset_id) == [200] * len(ASSET_FILES)
