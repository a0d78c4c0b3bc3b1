"""Takedowns: once an asset is deleted, no origin process serves it from memory.

The in-memory copy (``objectcache``) keeps media under a version prefix without
asking storage again, so a deleted asset's segments and init sections would be
served for as long as they stay in memory. The deleting process therefore
announces the takedown in Redis *before* it deletes anything, and every origin
process learns of it without a Redis round trip per request:

- Redis holds a generation counter and a sorted set of the newest takedowns
  (member the asset id, score the generation that announced it), written
  together by one script; when the set is trimmed to ``KEPT``, the highest
  generation trimmed away is recorded too.
- Each process polls the counter every ``POLL_INTERVAL_S`` in the background
  (started and stopped by the app's lifespan). When it moved, the process reads
  the takedowns after the generation it last saw, evicts those assets' objects
  and refuses to keep or serve them again for ``HOLD_S`` (far longer than any
  storage read that began before the takedown can last). A process that was
  away longer than the set reaches back (the trimmed mark is past what it saw)
  or that finds the counter reset (Redis lost its data) cannot tell what it
  missed and drops every copy it holds.
- The deleting process applies its own takedown at once, without waiting for
  its poll.

When Redis cannot be reached, the takedowns are not current (no successful
poll for ``STALE_AFTER_S``): the origin then trusts no copy in memory beyond
the short time it trusts a playlist, so every object is checked against
storage again, and a deleted one answers 404 as soon as storage says it is
gone. Serving carries on from storage; only the memory shortcut for immutable
media is off until the next successful poll. A DELETE itself needs Redis: it
answers 503 and deletes nothing when the takedown cannot be announced.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from redis import Redis
from redis.exceptions import RedisError

from stb_origin.origin.objectcache import ObjectCache
from stb_origin.storage.layout import HLS_ROOT, asset_prefix

log = logging.getLogger("stb_origin.origin.takedowns")

GENERATION_KEY = "stb:takedown:generation"
ASSETS_KEY = "stb:takedown:assets"
TRIMMED_KEY = "stb:takedown:trimmed"
KEPT = 10_000  # takedowns Redis remembers: about 0.5 MB
POLL_INTERVAL_S = 0.5
# Past this without a successful poll, copies in memory are no longer trusted.
STALE_AFTER_S = 2.0
HOLD_S = 3600.0

# KEYS: generation, assets, trimmed; ARGV: asset id, how many to keep.
_ANNOUNCE = """
local generation = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], generation, ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[2])
if excess > 0 then
  local last = redis.call('ZRANGE', KEYS[2], excess - 1, excess - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('SET', KEYS[3], last[2])
end
return generation
"""


def announce(redis: Redis, asset_id: str, kept: int = KEPT) -> int:
    """Records a takedown for every origin process; returns its generation.
    Raises RedisError."""
    generation: Any = redis.eval(_ANNOUNCE, 3, GENERATION_KEY, ASSETS_KEY, TRIMMED_KEY,
                                 asset_id, kept)
    return int(generation)


def asset_of(key: str) -> str | None:
    """The asset id of a storage key under ``hls/{id}/``, else None."""
    if not key.startswith(HLS_ROOT):
        return None
    asset_id, slash, _rest = key[len(HLS_ROOT):].partition("/")
    return asset_id if slash and asset_id else None


class Takedowns:
    """This process's view of the takedowns. ``is_down`` and ``current`` cost no
    I/O; ``sync`` and ``take_down`` talk to Redis and run in worker threads."""

    def __init__(self, redis: Redis, *, poll_interval_s: float = POLL_INTERVAL_S,
                 stale_after_s: float = STALE_AFTER_S, hold_s: float = HOLD_S,
                 kept: int = KEPT, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.poll_interval_s = poll_interval_s
        self.stale_after_s = stale_after_s
        self.hold_s = hold_s
        self.kept = kept
        self.clock = clock
        self._down: dict[str, float] = {}  # asset id -> when applied, oldest first
        self._seen = 0  # the generation read last
        self._synced_at: float | None = None
        self._caches: weakref.WeakSet[ObjectCache] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._failing = False

    def attach(self, cache: ObjectCache) -> None:
        """Evict taken-down assets from this cache from now on."""
        self._caches.add(cache)

    def is_down(self, asset_id: str) -> bool:
        return asset_id in self._down

    def covers(self, key: str) -> bool:
        """Whether the storage key belongs to a taken-down asset."""
        asset_id = asset_of(key)
        return asset_id is not None and asset_id in self._down

    def current(self) -> bool:
        """Whether this process has heard from Redis recently enough to trust memory."""
        synced_at = self._synced_at
        return synced_at is not None and self.clock() - synced_at <= self.stale_after_s

    def take_down(self, asset_id: str) -> None:
        """Announce in Redis, then apply here at once. Raises RedisError, having
        changed nothing, when Redis cannot be reached."""
        announce(self.redis, asset_id, self.kept)
        self._apply(asset_id)

    def sync(self) -> None:
        """Learn the takedowns announced since the last sync. Raises RedisError."""
        started = self.clock()
        generation = int(self.redis.get(GENERATION_KEY) or 0)
        if generation != self._seen:
            if generation < self._seen:
                # Redis lost its data (flushed, or a new server): what was taken
                # down before is unknowable, so keep nothing from before.
                self._drop_every_copy()
                entries: list[tuple[bytes, float]] = []
            else:
                with self.redis.pipeline(transaction=True) as pipe:
                    pipe.get(TRIMMED_KEY)
                    pipe.zrangebyscore(ASSETS_KEY, f"({self._seen}", "+inf", withscores=True)
                    trimmed, entries = pipe.execute()
                if int(trimmed or 0) > self._seen:
                    self._drop_every_copy()  # some takedowns we missed are gone from Redis
            for member, score in entries:
                self._apply(member.decode())
                generation = max(generation, int(score))
            self._seen = generation
        self._expire()
        self._synced_at = started

    async def watch(self) -> None:
        """Poll until cancelled; Redis errors are logged once per outage."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.sync)
            except RedisError as exc:
                if not self._failing:
                    log.warning("takedowns: Redis unreachable; copies in memory are checked"
                                " against storage until it is back", extra={"error": str(exc)})
                self._failing = True
            else:
                if self._failing:
                    log.info("takedowns: Redis reachable again")
                self._failing = False
            await anyio.sleep(self.poll_interval_s)

    def _apply(self, asset_id: str) -> None:
        # Marked first, evicted second: a copy put in between (by a read that
        # began before the takedown) is either evicted here or refused by
        # ObjectCache.put, which checks the mark under the cache's lock.
        with self._lock:
            self._down.pop(asset_id, None)
            self._down[asset_id] = self.clock()
        for cache in list(self._caches):
            cache.discard_prefix(asset_prefix(asset_id))

    def _drop_every_copy(self) -> None:
        for cache in list(self._caches):
            cache.clear()

    def _expire(self) -> None:
        cutoff = self.clock() - self.hold_s
        with self._lock:
            while self._down:
                asset_id, applied_at = next(iter(self._down.items()))
                if applied_at > cutoff:
                    break
                del self._down[asset_id]


__all__ = ["Takedowns", "announce", "asset_of"]
