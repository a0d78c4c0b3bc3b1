"""Connection limits across every server: per device and per token subject.

Each limited thing has a sorted set in Redis of its open connections, scored by
when each last said it was alive (at every heartbeat). A connection whose
server died stops renewing and no longer counts after ``stale_s``; one that
ends cleanly leaves at once. Taking a slot checks and adds in one script, so
two servers cannot both take the last one.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis as AsyncRedis

_PREFIX = "stb:events:conn:"

# KEYS: the sets; ARGV: now, stale before, connection id, ttl, then one limit per key.
# Returns 0, or the 1-based index of the first key whose limit is reached.
_TAKE = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[2])
  if redis.call('ZCARD', key) >= tonumber(ARGV[4 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1], ARGV[3])
  redis.call('EXPIRE', key, ARGV[4])
end
return 0
"""


def device(device_id: str) -> str:
    return f"{_PREFIX}device:{device_id}"


def subject(name: str) -> str:
    return f"{_PREFIX}subject:{name}"


class Slots:
    def __init__(self, redis: AsyncRedis, stale_s: float) -> None:
        self._redis = redis
        self._stale_s = stale_s
        self._take = redis.register_script(_TAKE)

    async def take(self, connection: str, limits: dict[str, int]) -> str | None:
        """None once ``connection`` holds a slot of every key in ``limits``; else
        the first key whose limit is reached (nothing taken)."""
        keys = list(limits)
        now = time.time()
        full = int(await self._take(keys=keys, args=[
            now, now - self._stale_s, connection, int(self._stale_s) + 1,
            *(limits[key] for key in keys)]))
        return keys[full - 1] if full else None

    async def renew(self, connection: str, keys: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zadd(key, {connection: time.time()}, xx=True)
                pipe.expire(key, int(self._stale_s) + 1)
            await pipe.execute()

    async def release(self, connection: str, keys: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrem(key, connection)
            await pipe.execute()
