"""The origin's in-memory copy of small hot objects: a size-bounded LRU in bytes.

Behind a CDN most requests never reach the origin; the ones that do come in
bursts from many edge servers at once: every edge misses a new playlist, the
first segments of a popular title, the init sections. Keeping them here turns
the bursts into one storage read each and answers them from memory. Objects up
to 4 MiB are kept, which covers every rung's segments at the default 2-4 s
lengths (bench/origin_vs_nginx.py: a 1 MB segment from memory runs at nginx's
rate, streamed from storage at a fifth of it); bigger ones are streamed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from stb_origin.storage import ObjectInfo

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_OBJECT_BYTES = 4 * 1024 * 1024
# How long a copy of something mutable (a playlist, anything outside a version
# prefix) is served without asking storage. Playlists are the switch for an
# asset: a takedown deletes them and a republish rewrites the master, so the
# origin holds them only a couple of seconds. That still turns a burst of edge
# misses into one storage read, and adds at most this much to the playlist
# max-age the CDN applies on top before a takedown or republish is seen.
# Immutable objects (media under a version prefix) never need asking again.
MUTABLE_TTL_S = 2.0
# Rough bookkeeping per entry (the entry, its ObjectInfo, the dict slot), so
# that many tiny objects cannot exceed the budget unseen.
ENTRY_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class CachedObject:
    info: ObjectInfo
    body: bytes
    immutable: bool
    # clock() just before storage last confirmed this copy: taken before the
    # stat, so freshness can only be underestimated.
    checked_at: float

    @property
    def cost(self) -> int:
        return len(self.body) + len(self.info.key) + ENTRY_OVERHEAD_BYTES


class ObjectCache:
    """Thread-safe: loads fill it from worker threads, requests read it on the loop."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
                 mutable_ttl_s: float = MUTABLE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_object_bytes + ENTRY_OVERHEAD_BYTES > max_bytes:
            raise ValueError("max_object_bytes must leave room in max_bytes")
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes
        self.mutable_ttl_s = mutable_ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, CachedObject] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def fits(self, size: int) -> bool:
        return size <= self.max_object_bytes

    def is_fresh(self, entry: CachedObject, trust_immutable: bool = True) -> bool:
        """trust_immutable=False: an immutable copy too goes stale after the
        mutable TTL (while takedowns cannot be heard of, see ``takedowns``)."""
        if entry.immutable and trust_immutable:
            return True
        return self.clock() - entry.checked_at < self.mutable_ttl_s

    def get(self, key: str) -> CachedObject | None:
        """The entry, fresh or not (a stale one can still be revalidated), and
        marks it recently used."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, entry: CachedObject, refuse: Callable[[str], bool] | None = None) -> None:
        """refuse(key) is asked under the lock, so a ``discard_prefix`` that
        follows the change refuse sees cannot miss this entry."""
        if not self.fits(entry.info.size) or len(entry.body) != entry.info.size:
            return
        key = entry.info.key
        with self._lock:
            if refuse is not None and refuse(key):
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.cost
            self._entries[key] = entry
            self._bytes += entry.cost
            while self._bytes > self.max_bytes:
                _key, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.cost

    def discard(self, key: str) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.cost

    def discard_prefix(self, prefix: str) -> None:
        """Every entry whose key starts with prefix (a scan: takedowns are rare)."""
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                self._bytes -= self._entries.pop(key).cost

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
