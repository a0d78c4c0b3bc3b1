"""Sessions of the browser pages (/device, /console), kept in Redis under the hash of
an opaque cookie.

The cookie is 256 random bits and means nothing by itself; Redis holds the
session under its SHA-256, so a Redis dump cannot be replayed as cookies. Each
session carries its CSRF token (synchronizer pattern) and, once signed in, the
user; signing in starts a new session, so a planted cookie is worth nothing.
Each page keeps its sessions apart (a store of its own: prefix and idle time-out).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field, replace

from redis import Redis

MAX_COOKIE = 128


@dataclass(frozen=True)
class WebSession:
    cookie: str = field(repr=False)
    csrf_token: str = field(repr=False)
    user_id: str | None = None
    # what the page is in the middle of: /device, the authorization shown for
    # confirmation; /console, nothing
    pending: str | None = None
    # ids and expiry times of the access tokens minted for this session, so that
    # signing out can deny them (the console's)
    tokens: tuple[tuple[str, int], ...] = ()

    def csrf_matches(self, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(
            submitted.encode(), self.csrf_token.encode())


class SessionStore:
    def __init__(self, redis: Redis, prefix: str, idle_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.idle_s = idle_s  # the time-out counts from the last request

    def new_session(self, user_id: str | None = None) -> WebSession:
        session = WebSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user_id)
        self.save(session)
        return session

    def load(self, cookie: str | None) -> WebSession | None:
        if not cookie or len(cookie) > MAX_COOKIE:
            return None
        # Reading a session keeps it alive.
        raw = self.redis.getex(self._key(cookie), ex=self.idle_s)
        if raw is None:
            return None
        data = json.loads(raw)
        return WebSession(cookie, data["csrf_token"], data.get("user_id"), data.get("pending"),
                          tuple((jti, int(exp)) for jti, exp in data.get("tokens", ())))

    def save(self, session: WebSession) -> None:
        data = {k: v for k, v in asdict(session).items() if k != "cookie"}
        self.redis.set(self._key(session.cookie), json.dumps(data), ex=self.idle_s)

    def set_pending(self, session: WebSession, pending: str | None) -> WebSession:
        changed = replace(session, pending=pending)
        self.save(changed)
        return changed

    def delete(self, session: WebSession) -> None:
        self.redis.delete(self._key(session.cookie))

    def _key(self, cookie: str) -> str:
        return self.prefix + hashlib.sha256(cookie.encode()).hexdigest()
