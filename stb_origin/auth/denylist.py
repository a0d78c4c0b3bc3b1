"""Tokens and devices refused before their tokens expire, kept in Redis.

Access tokens are short-lived and not looked up anywhere, so revoking one (or
the device it is bound to) needs a list that every server process checks:
an entry lives only as long as the tokens it stops could.
"""

from __future__ import annotations

import time

from redis import Redis

from stb_origin.auth.tokens import LEEWAY_S

_PREFIX = "stb:deny:"


def deny_token(redis: Redis, jti: str, expires_at: int) -> None:
    # Kept until the token is dead even to a verifier allowing for clock skew.
    ttl = int(expires_at + LEEWAY_S - time.time()) + 1
    if ttl > 0:
        redis.set(f"{_PREFIX}jti:{jti}", 1, ex=ttl)


def deny_device(redis: Redis, device_id: str, for_s: int) -> None:
    redis.set(f"{_PREFIX}device:{device_id}", 1, ex=max(for_s, 1))


def names(jti: str, device_id: str | None) -> list[str]:
    """The entries any of which refuses a token: EXISTS on them is the check (the
    key path sends it in its one Redis round trip)."""
    found = [f"{_PREFIX}jti:{jti}"]
    if device_id is not None:
        found.append(f"{_PREFIX}device:{device_id}")
    return found


def is_denied(redis: Redis, jti: str, device_id: str | None) -> bool:
    return bool(redis.exists(*names(jti, device_id)))
