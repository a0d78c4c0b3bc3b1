"""Concurrent streams: the boxes of an account that are playing, in Redis.

One sorted set per account, its members the device ids, each scored by the
wall-clock second of that box's last key fetch. A box plays while its entry is
younger than the idle window: players fetch a key at every rotation, so a
window longer than the longest rotation period keeps every playing box in.
A key fetch takes a slot (``TAKE_SLOT``, run inside the key path's one Lua
script, ``drm.checks``): a box already in the set renews its entry, a new box
joins while the account has fewer than the limit, and is refused otherwise.
A box frees its slot at once with a ``stop`` activity report (``release``).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

_PREFIX = "stb:streams:"

# take_slot(set, device, now, limit, idle_s): 1 if the device may play, else 0.
# Entries older than the idle window go first; the set expires with its last entry.
TAKE_SLOT = """
local function take_slot(set, device, now, limit, idle)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now - idle)
  if redis.call('ZSCORE', set, device) or redis.call('ZCARD', set) < limit then
    redis.call('ZADD', set, now, device)
    redis.call('EXPIRE', set, idle)
    return 1
  end
  return 0
end
"""
_TAKE_ONE = TAKE_SLOT + "return take_slot(KEYS[1], ARGV[1], tonumber(ARGV[2]),"\
    " tonumber(ARGV[3]), tonumber(ARGV[4]))"


@dataclass(frozen=True)
class StreamLimit:
    """At most ``max_streams`` boxes of an account play at once (0: no limit); a box
    whose last key fetch is ``idle_s`` old no longer counts."""

    max_streams: int = 0
    idle_s: int = 1200

    @property
    def on(self) -> bool:
        return self.max_streams > 0


NO_LIMIT = StreamLimit()


def set_name(account_id: str) -> str:
    return f"{_PREFIX}{account_id}"


def take(redis: Redis, limit: StreamLimit, account_id: str, device_id: str,
         now: float) -> bool:
    """``TAKE_SLOT`` on its own: for the first fetch of a user in a process, whose
    account was not known when the batched script ran."""
    taken = redis.eval(_TAKE_ONE, 1, set_name(account_id), device_id, int(now),
                       limit.max_streams, limit.idle_s)
    return bool(taken)


def renew(redis: Redis, limit: StreamLimit, account_id: str, device_id: str,
          now: float) -> None:
    """Keep a playing box's slot (its progress reports say it still plays: a live
    channel's key may rotate less often than the idle window); a box holding none
    gets none, only a key fetch takes a slot."""
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(set_name(account_id), {device_id: int(now)}, xx=True, gt=True)
    pipe.expire(set_name(account_id), limit.idle_s)
    pipe.execute()


def release(redis: Redis, account_id: str, device_id: str) -> None:
    redis.zrem(set_name(account_id), device_id)


def too_many_message(limit: StreamLimit) -> str:
    return (f"this account already plays on {limit.max_streams} boxes, the most it may"
            " (STB_MAX_STREAMS_PER_ACCOUNT); stop one of them, or wait until it has been"
            f" idle for {limit.idle_s} s")
