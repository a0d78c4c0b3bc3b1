"""Change stamps: how a process knows its cached copy of some rows is still current.

A stamp is a random value in Redis, one per thing whose rows other processes
cache (an account's devices and entitlements; an asset's packages and keys).
Whoever changes those rows sets a new random value *after* the commit. A
reader fetches the stamp before it loads the rows, keeps it with its copy, and
on every use reads the stamp again (in the same Redis round trip as the rest of
its Redis work) and reloads when it differs.

Why stamps and not pub/sub invalidation messages: a stamp is read on every use,
so there is no message to miss — a process that was disconnected, busy or just
started sees the new value on its next request. Random values instead of
counters so that a flushed or expired key (read as None) can never come back
equal to an old copy's stamp. Stamps expire after a day to bound Redis memory;
an expired stamp also just means one reload.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from redis import Redis

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_PREFIX = "stb:stamp:"
STAMP_TTL_S = 86_400


def account(account_id: str) -> str:
    return f"{_PREFIX}account:{account_id}"


def asset(asset_id: str) -> str:
    return f"{_PREFIX}asset:{asset_id}"


def renew(redis: Redis, *names: str) -> None:
    """A new value for each stamp: every cached copy keyed by the old one is stale."""
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.set(name, secrets.token_hex(8), ex=STAMP_TTL_S)
    pipe.execute()


def read(redis: Redis, name: str) -> bytes | None:
    value = redis.get(name)
    return value if isinstance(value, bytes) or value is None else value.encode()


class StampedCache(Generic[K, V]):
    """Copies kept with the stamp they were loaded under, for at most ``ttl_s``.

    ``get`` hands back a copy only when the stamp read now is the one it was
    stored with and it is younger than ``ttl_s`` (which bounds a change made
    behind the service's back, with no stamp renewed). At ``max_entries`` the
    cache starts over: cheaper than LRU bookkeeping on every hit, and a reload
    is one small query. Threads share it: an entry is replaced, never changed.
    """

    def __init__(self, ttl_s: float, max_entries: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[V, bytes | None, float]] = {}

    def get(self, key: K, stamp: bytes | None) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, stored_stamp, loaded_at = entry
        if stored_stamp != stamp or self._clock() - loaded_at >= self._ttl_s:
            return None
        return value

    def put(self, key: K, value: V, stamp: bytes | None) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (value, stamp, self._clock())

    def __len__(self) -> int:
        return len(self._entries)
