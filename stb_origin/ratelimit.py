"""Fixed-window rate limits kept in Redis, so every server process shares them."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline

_PREFIX = "stb:rate:"


Clock = Callable[[], float]


def hit(redis: Redis, key: str, limit: int, window_s: int,
        clock: Clock = time.time) -> float | None:
    """Count one event for ``key``; None if it is within ``limit`` per window,
    else the seconds until the window ends (for ``Retry-After``). ``clock`` is
    wall time (windows line up across processes); tests pass their own."""
    now = clock()
    pipe = redis.pipeline(transaction=False)
    add_hit(pipe, key, window_s, now)
    count, _ = pipe.execute()
    return wait_s(int(count), limit, window_s, now)


def add_hit(pipe: Pipeline, key: str, window_s: int, now: float) -> None:
    """Queue the two commands of one hit on ``pipe`` (results: the count, then
    ignore one), for a caller that has more to ask Redis in the same round trip."""
    name = f"{_PREFIX}{key}:{int(now // window_s)}"
    pipe.incr(name)
    pipe.expire(name, window_s + 1)


def wait_s(count: int, limit: int, window_s: int, now: float) -> float | None:
    """None if ``count`` hits are within ``limit``, else the seconds the window has left."""
    if count <= limit:
        return None
    return (int(now // window_s) + 1) * window_s - now


def reset(redis: Redis, key: str, window_s: int, clock: Clock = time.time) -> None:
    """Forget the current window's count (e.g. after a successful sign-in)."""
    redis.delete(f"{_PREFIX}{key}:{int(clock() // window_s)}")
