"""One reader of the event log per server process, fanning out to its connections.

Not one XREAD per socket: a thousand sockets on a process cost Redis one
blocked read, and each event is decoded once. Handing an event to a connection
never waits: each has a bounded queue, and a connection whose queue is full
is marked dropped (it closes itself) instead of holding up the others.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from stb_origin import eventlog
from stb_origin.events.audience import Audience

log = logging.getLogger("stb_origin.events")

READ_BATCH = 500
READ_BLOCK_MS = 5_000
RETRY_S = 1.0


class Subscriber:
    def __init__(self, audience: Audience, queue_size: int) -> None:
        self.audience = audience
        self.queue: asyncio.Queue[eventlog.Event] = asyncio.Queue(queue_size)
        # Set when its queue overflowed: the connection is to be closed.
        self.dropped = asyncio.Event()

    def offer(self, event: eventlog.Event) -> None:
        if self.dropped.is_set() or not self.audience.hears(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped.set()


class Hub:
    def __init__(self, redis: AsyncRedis, queue_size: int) -> None:
        self.redis = redis
        self.queue_size = queue_size
        # The offset of the last event handed out; events after it reach subscribers.
        self.position = "0-0"
        self.ready = asyncio.Event()
        # Set when the server is going down: connections close (1001) at once.
        self.closing = asyncio.Event()
        self._subscribers: set[Subscriber] = set()

    def subscribe(self, audience: Audience) -> tuple[Subscriber, str]:
        """A new subscriber and the offset after which its events come from the hub
        (what is at or before it, a reconnecting client replays from the log)."""
        subscriber = Subscriber(audience, self.queue_size)
        self._subscribers.add(subscriber)
        return subscriber, self.position

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    async def run(self) -> None:
        """Read the log for as long as the server runs."""
        while not self.ready.is_set():
            try:
                self.position = await eventlog.last_offset(self.redis)
                self.ready.set()
            except RedisError as exc:
                log.warning("event log unreadable", extra={"error": type(exc).__name__})
                await asyncio.sleep(RETRY_S)
        while True:
            try:
                events = await eventlog.read(self.redis, self.position, READ_BATCH,
                                             READ_BLOCK_MS)
            except RedisError as exc:
                log.warning("event log unreadable", extra={"error": type(exc).__name__})
                await asyncio.sleep(RETRY_S)
                continue
            for event in events:
                self.position = event.offset
                for subscriber in tuple(self._subscribers):
                    subscriber.offer(event)
