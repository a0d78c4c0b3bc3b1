"""Fixed-window rate limits kept in Redis, so every server process shares them."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

_PREFIX = "stb:rate:"


Clock = Callable[[], float]


def hit(redis: Redis, key: str, limit: int, window_s: int,
        clock: Clock = time.time) -> float | None:
    """Count one event for ``key``; None if it is within ``limit`` per window,
    else the seconds until the window ends (for ``Retry-After``). ``clock`` is
    wall time (windows line up across processes); tests pass their own."""
    now = clock()
    window = int(now // window_s)
    name = f"{_PREFIX}{key}:{window}"
    pipe = redis.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window_s + 1)
    count, _ = pipe.execute()
    if int(count) <= limit:
        return None
    return (window + 1) * window_s - now


def reset(redis: Redis, key: str, window_s: int, clock: Clock = time.time) -> None:
    """Forget the current window's count (e.g. after a successful sign-in)."""
    redis.delete(f"{_PREFIX}{key}:{int(clock() // window_s)}")
