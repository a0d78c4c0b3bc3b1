"""Sessions of the /device page, kept in Redis under the hash of an opaque cookie.

The cookie is 256 random bits and means nothing by itself; Redis holds the
session under its SHA-256, so a Redis dump cannot be replayed as cookies. Each
session carries its CSRF token (synchronizer pattern) and, once signed in, the
user; signing in starts a new session, so a planted cookie is worth nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field, replace

from redis import Redis

_PREFIX = "stb:oauth:web:"
TTL_S = 15 * 60  # idle time-out: the page is for approving a box, not for staying


@dataclass(frozen=True)
class WebSession:
    cookie: str = field(repr=False)
    csrf_token: str = field(repr=False)
    user_id: str | None = None
    # the device authorization shown for confirmation, if any
    pending: str | None = None

    def csrf_matches(self, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(
            submitted.encode(), self.csrf_token.encode())


def new_session(redis: Redis, user_id: str | None = None) -> WebSession:
    session = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user_id)
    save(redis, session)
    return session


def load(redis: Redis, cookie: str | None) -> WebSession | None:
    if not cookie or len(cookie) > 128:
        return None
    # Reading a session keeps it alive: the time-out counts from the last request.
    raw = redis.getex(_key(cookie), ex=TTL_S)
    if raw is None:
        return None
    data = json.loads(raw)
    return WebSession(cookie, data["csrf_token"], data.get("user_id"), data.get("pending"))


def save(redis: Redis, session: WebSession) -> None:
    data = {k: v for k, v in asdict(session).items() if k != "cookie"}
    redis.set(_key(session.cookie), json.dumps(data), ex=TTL_S)


def set_pending(redis: Redis, session: WebSession, pending: str | None) -> WebSession:
    changed = replace(session, pending=pending)
    save(redis, changed)
    return changed


def delete(redis: Redis, session: WebSession) -> None:
    redis.delete(_key(session.cookie))


def _key(cookie: str) -> str:
    return _PREFIX + hashlib.sha256(cookie.encode()).hexdigest()
