"""The event fan-out of one server process: its hub, its connection limits, its end.

Made in the app's lifespan, since its Redis connections belong to the event
loop that serves. On SIGTERM every connection is told first (WebSockets close
with 1001, SSE streams end) and the server's own handler runs a moment later,
so that no socket is left for the server to cut.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

import anyio
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from stb_origin import eventlog
from stb_origin.events import slots
from stb_origin.events.access import Listener
from stb_origin.events.hub import READ_BLOCK_MS, Hub, Subscriber
from stb_origin.queues import REDIS_TIMEOUT_S
from stb_origin.services import Services
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE

# Between telling the connections and letting the server's SIGTERM handler run.
CLOSE_GRACE_S = 0.5
# A connection whose server stopped renewing its slot no longer counts after this
# many heartbeats.
STALE_HEARTBEATS = 3


@dataclass
class Connection:
    """One open connection's subscription and the slots it holds."""

    id: str
    subscriber: Subscriber
    start: str
    slot_keys: list[str]
    expires_at: int  # its token's expiry
    deny_names: tuple[str, ...]  # its token's deny-list entries


class Events:
    def __init__(self, hub: Hub, limits: slots.Slots, heartbeat_s: float, per_device: int,
                 per_subject: int) -> None:
        self.hub = hub
        self.slots = limits
        self.heartbeat_s = heartbeat_s
        self.per_device = per_device
        self.per_subject = per_subject

    async def check_offset(self, after: str | None) -> None:
        """400 for an offset this log never gave out (malformed, or in the future)."""
        if after is None:
            return
        try:
            eventlog.parse_offset(after)
            await eventlog.lost_after(self.hub.redis, after)
        except eventlog.BadOffset as exc:
            raise ApiError(400, "bad_offset", str(exc), NO_STORE) from None

    @asynccontextmanager
    async def connection(self, listener: Listener) -> AsyncIterator[Connection]:
        """A slot and a subscription for as long as the block runs; 429 when the
        device or the subject has its connections already."""
        audience = listener.audience
        limits = {slots.subject(listener.subject): self.per_subject}
        if audience.device_id is not None:
            limits[slots.device(audience.device_id)] = self.per_device
        connection_id = secrets.token_hex(8)
        try:
            full = await self.slots.take(connection_id, limits)
        except RedisError:
            raise ApiError(503, "unavailable", "the event service cannot be reached;"
                           " retry shortly", {"Retry-After": "5", **NO_STORE}) from None
        if full is not None:
            what = "device" if full.startswith(slots.device("")) else "token subject"
            raise ApiError(429, "too_many_connections",
                           f"this {what} has {limits[full]} event connections open already"
                           " (the most it may)", {"Retry-After": "30", **NO_STORE})
        subscriber, start = self.hub.subscribe(audience)
        try:
            yield Connection(connection_id, subscriber, start, list(limits),
                             listener.expires_at, listener.deny_names)
        finally:
            self.hub.unsubscribe(subscriber)
            with anyio.CancelScope(shield=True):
                # If Redis fails, the slot goes stale and stops counting without us.
                with suppress(RedisError):
                    await self.slots.release(connection_id, list(limits))

    async def keep_alive(self, connection: Connection) -> None:
        """Renew the connection's slots every heartbeat; returns once its token (or
        the token's device) is on the deny-list: a connection is checked like a
        request, at most a heartbeat late. A device revoked over the API is told
        at once as well (its ``sign_out`` command)."""
        while True:
            await anyio.sleep(self.heartbeat_s)
            # Else next time: a slot lost meanwhile only lets one more connect, and
            # no event reaches anyone while Redis is away.
            with suppress(RedisError):
                await self.slots.renew(connection.id, connection.slot_keys)
                if await self.hub.redis.exists(*connection.deny_names):
                    return


    async def token_expiry(self, connection: Connection) -> None:
        """Returns when the connection's token has expired."""
        await anyio.sleep(max(0.0, connection.expires_at - time.time()))


@asynccontextmanager
async def running(services: Services) -> AsyncIterator[Events]:
    """The process's Events, its hub reading the log, until the block ends."""
    settings = services.settings
    assert settings.redis_url is not None  # build_services refuses to start without
    # Its reads block for READ_BLOCK_MS: the socket waits longer than that.
    redis = AsyncRedis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S,
                                socket_timeout=READ_BLOCK_MS / 1000 + REDIS_TIMEOUT_S,
                                health_check_interval=30)
    hub = Hub(redis, settings.events_queue)
    events = Events(hub, slots.Slots(redis, settings.events_heartbeat_s * STALE_HEARTBEATS),
                    settings.events_heartbeat_s, settings.events_per_device,
                    settings.events_per_subject)
    try:
        async with anyio.create_task_group() as background:
            background.start_soon(hub.run)
            with _closing_on_sigterm(hub):
                try:
                    yield events
                finally:
                    hub.closing.set()
                    background.cancel_scope.cancel()
    finally:
        await redis.aclose()


@contextmanager
def _closing_on_sigterm(hub: Hub) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def later(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        else:
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(signum)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.closing.set)
        loop.call_soon_threadsafe(loop.call_later, CLOSE_GRACE_S, later, signum, frame)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (a server in a test's thread): nothing to hook
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def events_of(state: Any) -> Events:
    events: Events | None = getattr(state, "events", None)
    if events is None:
        raise ApiError(503, "unavailable", "the event service is not running", NO_STORE)
    return events
