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
    name = window_name(key, window_s, now)
    pipe = redis.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window_s + 1)
    count, _ = pipe.execute()
    return wait_s(int(count), limit, window_s, now)


def window_name(key: str, window_s: int, now: float) -> str:
    """The Redis counter of ``key``'s current window (for a caller that counts the
    hit itself, in a round trip that does more): INCR it, and let it expire a
    second after the window ends."""
    return f"{_PREFIX}{key}:{int(now // window_s)}"


def wait_s(count: int, limit: int, window_s: int, now: float) -> float | None:
    """None if ``count`` hits are within ``limit``, else the seconds the window has left."""
    if count <= limit:
        return None
    return (int(now // window_s) + 1) * window_s - now


def reset(redis: Redis, key: str, window_s: int, clock: Clock = time.time) -> None:
    """Forget the current window's count (e.g. after a successful sign-in)."""
    redis.delete(window_name(key, window_s, clock()))
