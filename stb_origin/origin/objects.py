"""Finding an object for a request: the in-memory copy, or one storage read shared
by every request that arrives while it is in flight.

Validation rules:

- Immutable objects (media under a version prefix) are served from memory until
  evicted, with no storage call: the packager writes each of them once, before
  any playlist names it, and a republish uses a new prefix. A takedown
  (``takedowns``) evicts every object of its asset at once and refuses it from
  then on, including the answer of a storage read already in flight; while
  takedowns cannot be heard of, immutable copies are checked like mutable ones.
- Mutable objects (playlists, anything outside a version prefix) are served from
  memory for ``mutable_ttl_s``. After that one request stats the object: the
  same ETag (size, mtime and inode on a folder; the S3 ETag) renews the copy
  without reading the body again, another ETag reads it again, a missing object
  drops the copy, so a takedown is seen within the TTL.
- When storage is unavailable, nothing stale is served from here: a request that
  needs storage gets 503 + Retry-After (no-store). Immutable copies keep being
  served, since they never need storage. Serving stale playlists during an
  outage is the CDN's decision (``proxy_cache_use_stale``), made in one place
  with its own bounds rather than compounded here.

The single flight is keyed by the storage key alone: a small object is read
whole, so ranges and conditional requests are answered from that one copy. For
objects too big to keep, the flight shares the stat and every request streams
its own body (its own range) from storage, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import anyio.to_thread

from stb_origin.observability.metrics import ORIGIN_CACHE_REQUESTS
from stb_origin.origin.objectcache import CachedObject, ObjectCache
from stb_origin.origin.singleflight import SingleFlight
from stb_origin.origin.takedowns import Takedowns
from stb_origin.storage import ObjectInfo, ObjectNotFound, Storage

SEEN_ONCE_KEYS = 100_000  # ~10 MB of keys: far more segments than a burst of one-offs

# hit: answered from memory with no storage call of its own (a fresh copy, or
# the body another request's read just brought in). miss: anything else.
_HIT = ORIGIN_CACHE_REQUESTS.labels(result="hit")
_MISS = ORIGIN_CACHE_REQUESTS.labels(result="miss")


@dataclass(frozen=True)
class Found:
    info: ObjectInfo
    body: bytes | None  # the whole object when held in memory; None: stream it
    cache_control: str | None = None  # its own policy (a generated playlist's)


class Objects:
    def __init__(self, storage: Storage, cache: ObjectCache,
                 takedowns: Takedowns | None = None) -> None:
        """takedowns: None for an origin on its own, with no Redis to hear them from."""
        self.storage = storage
        self.cache = cache
        self.takedowns = takedowns
        if takedowns is not None:
            takedowns.attach(cache)
        self.flights: SingleFlight[str, Found] = SingleFlight()
        # Keys asked for once and not kept yet, oldest first (insertion order).
        self.seen_once: dict[str, None] = {}

    def taken_down(self, key: str) -> bool:
        return self.takedowns is not None and self.takedowns.covers(key)

    def _trusted(self) -> bool:
        return self.takedowns is None or self.takedowns.current()

    async def find(self, key: str, immutable: bool) -> Found:
        """Raises StorageError (ObjectNotFound, StorageUnavailable, ...)."""
        if self.taken_down(key):
            _MISS.inc()
            raise ObjectNotFound(key)
        entry = self.cache.get(key)
        if entry is not None and self.cache.is_fresh(entry, self._trusted()):
            _HIT.inc()
            return Found(entry.info, entry.body)

        async def load() -> Found:
            return await anyio.to_thread.run_sync(self._load, key, immutable, entry)

        try:
            found, shared = await self.flights.run(key, load)
        except Exception:
            _MISS.inc()
            raise
        if self.taken_down(key):  # while the read was in flight
            _MISS.inc()
            raise ObjectNotFound(key)
        (_HIT if shared and found.body is not None else _MISS).inc()
        return found

    async def find_file(self, key: str) -> Found:
        """An immutable object, for a server that can send local files itself (pathsend).

        From memory when a copy is there. Else, when the object is a local file,
        only the first request for it is a stat, the server sending the file:
        one-off requests (a box seeking, a CDN filling a cold edge) never pay for
        a copy into memory that nobody asks for again. A second request reads it
        into memory (cache on second hit); remote objects always are.
        """
        if self.taken_down(key):
            _MISS.inc()
            raise ObjectNotFound(key)
        entry = self.cache.get(key)
        if entry is not None and self.cache.is_fresh(entry, self._trusted()):
            _HIT.inc()
            return Found(entry.info, entry.body)
        if entry is not None or key in self.seen_once or self.storage.local_path(key) is None:
            return await self.find(key, True)
        self.seen_once[key] = None
        if len(self.seen_once) > SEEN_ONCE_KEYS:
            del self.seen_once[next(iter(self.seen_once))]  # the oldest
        _MISS.inc()
        return Found(await anyio.to_thread.run_sync(self.storage.stat, key), None)

    def _load(self, key: str, immutable: bool, stale: CachedObject | None) -> Found:
        """In a worker thread: stat, then the body when it is small enough to keep."""
        checked_at = self.cache.clock()
        try:
            info = self.storage.stat(key)
        except ObjectNotFound:
            self.cache.discard(key)  # taken down or replaced by nothing
            raise
        if stale is not None and stale.info.etag == info.etag and stale.info.size == info.size:
            renewed = replace(stale, info=info, checked_at=checked_at)
            self.cache.put(renewed, self.taken_down)
            return Found(info, renewed.body)
        if not self.cache.fits(info.size):
            self.cache.discard(key)
            return Found(info, None)
        body = b"".join(self.storage.read_chunks(key))
        if len(body) != info.size:
            # Rewritten between the stat and the read (or a short read): these
            # bytes do not belong to that ETag, so keep nothing and let the
            # request stream, which sends exactly info.size bytes or aborts.
            # (A rewrite of the same size goes unnoticed here, as it would when
            # streaming; only mutable objects are rewritten, so the TTL bounds it.)
            self.cache.discard(key)
            return Found(info, None)
        self.cache.put(CachedObject(info, body, immutable, checked_at), self.taken_down)
        return Found(info, body)
