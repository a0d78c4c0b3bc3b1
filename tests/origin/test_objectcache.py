"""The in-memory copy on its own: bytes-bounded LRU and freshness, with a hand-driven clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stb_origin.origin.objectcache import ENTRY_OVERHEAD_BYTES, CachedObject, ObjectCache
from stb_origin.storage import ObjectInfo
from tests.support.clock import ManualClock

KIB = 1024



def entry(key: str, size: int, immutable: bool = True, at: float = 1000.0,
          etag: str = '"1"') -> CachedObject:
    info = ObjectInfo(key=key, size=size, etag=etag,
                      last_modified=datetime(2024, 1, 1, tzinfo=UTC), content_type="x/y")
    return CachedObject(info, b"x" * size, immutable, at)


def test_put_and_get() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB)
    cache.put(entry("a", 100))
    got = cache.get("a")
    assert got is not None and got.body == b"x" * 100
    assert cache.get("b") is None
    assert cache.bytes == 100 + len("a") + ENTRY_OVERHEAD_BYTES


def test_eviction_by_size_drops_the_least_recently_used() -> None:
    cost = 4 * KIB + 1 + ENTRY_OVERHEAD_BYTES
    cache = ObjectCache(max_bytes=3 * cost, max_object_bytes=4 * KIB)
    for key in "abc":
        cache.put(entry(key, 4 * KIB))
    assert len(cache) == 3
    cache.get("a")  # now the most recently used
    cache.put(entry("d", 4 * KIB))
    assert cache.get("b") is None  # the least recently used went
    assert all(cache.get(key) is not None for key in "acd")
    assert cache.bytes <= cache.max_bytes


def test_many_small_objects_stay_within_the_budget() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB)
    for n in range(1000):
        cache.put(entry(f"k{n}", 10))
    assert cache.bytes <= 64 * KIB
    assert 0 < len(cache) < 1000  # the per-entry overhead counts


def test_objects_over_the_limit_are_not_kept() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB)
    cache.put(entry("big", 8 * KIB + 1))
    assert cache.get("big") is None and cache.bytes == 0


def test_a_body_that_does_not_match_its_size_is_not_kept() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB)
    short = entry("a", 100)
    cache.put(CachedObject(short.info, b"only this", True, 0.0))
    assert cache.get("a") is None


def test_replacing_an_entry_keeps_the_byte_count() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB)
    cache.put(entry("a", 100))
    cache.put(entry("a", 300))
    assert cache.bytes == 300 + 1 + ENTRY_OVERHEAD_BYTES and len(cache) == 1
    cache.discard("a")
    cache.discard("a")
    assert cache.bytes == 0 and len(cache) == 0


def test_mutable_entries_go_stale_after_the_ttl_immutable_never() -> None:
    clock = ManualClock()
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB, mutable_ttl_s=2.0,
                        clock=clock)
    playlist = entry("p.m3u8", 10, immutable=False, at=clock.now)
    segment = entry("s.m4s", 10, immutable=True, at=clock.now)
    assert cache.is_fresh(playlist) and cache.is_fresh(segment)
    clock.now += 1.9
    assert cache.is_fresh(playlist)
    clock.now += 0.1
    assert not cache.is_fresh(playlist)
    clock.now += 86400 * 365
    assert cache.is_fresh(segment)


def test_a_zero_ttl_never_serves_mutable_entries_unchecked() -> None:
    cache = ObjectCache(max_bytes=64 * KIB, max_object_bytes=8 * KIB, mutable_ttl_s=0.0)
    assert not cache.is_fresh(entry("p.m3u8", 10, immutable=False, at=cache.clock()))


def test_the_largest_object_must_fit_the_budget() -> None:
    with pytest.raises(ValueError):
        ObjectCache(max_bytes=KIB, max_object_bytes=KIB)
