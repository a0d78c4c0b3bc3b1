"""What one connection is sent, whatever carries it (WebSocket or SSE).

First ``subscribed``; then, for a client that came back with its last offset,
the events it missed, or ``resync`` when some of them are gone from the log;
then live events from the hub, with a ``heartbeat`` whenever nothing else was
sent for a while. It ends after a ``sign_out`` command to the connection's
device (a revoked device, or an admin's command): the transport then closes.
Otherwise the transport ends it (slow consumer, shutdown, client gone, token
expired or revoked).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from stb_origin import eventlog
from stb_origin.events.hub import Hub, Subscriber

# More missed events than this: resync (reloading state is then the cheaper way).
MAX_REPLAY = 10_000
REPLAY_PAGE = 500


@dataclass(frozen=True)
class Control:
    """A message about the connection itself, not an event of the log."""

    name: str  # subscribed | resync | heartbeat
    data: dict[str, Any] = field(default_factory=dict)
    # The offset to come back with, for messages that move it (resync).
    offset: str | None = None


Outgoing = eventlog.Event | Control


async def outgoing(hub: Hub, subscriber: Subscriber, start: str, after: str | None,
                   heartbeat_s: float) -> AsyncIterator[Outgoing]:
    """Every message of the connection, for as long as it is iterated. ``start``:
    the offset the hub's events begin after (Hub.subscribe); ``after``: the
    client's last offset (checked already with eventlog.parse_offset)."""
    topics = sorted(topic if key is None else f"{topic}:{key}"
                    for topic, key in subscriber.audience.subscriptions)
    yield Control("subscribed", {"topics": topics, "offset": start}, offset=start)
    seen = after or start
    if after is not None:
        missed = await _missed(hub, subscriber, after, start)
        if missed is None:
            yield Control("resync", {"offset": start}, offset=start)
            seen = start
        else:
            for event in missed:
                yield event
            # A client ahead of this server (it read another server first) has
            # seen the hub's events up to its offset already.
            seen = max(after, start, key=eventlog.parse_offset)
    seen_at = eventlog.parse_offset(seen)
    while True:
        try:
            # Without a timer when events are waiting: the busy path, once per
            # event and connection.
            event = subscriber.queue.get_nowait()
        except asyncio.QueueEmpty:
            try:
                event = await asyncio.wait_for(subscriber.queue.get(), heartbeat_s)
            except TimeoutError:
                yield Control("heartbeat")
                continue
        if eventlog.parse_offset(event.offset) > seen_at:
            yield event
            if _signs_out(event):
                return


def _signs_out(event: eventlog.Event) -> bool:
    # Only events for this very device reach it (Audience.hears).
    return (event.topic == eventlog.COMMANDS and event.device is not None
            and event.data.get("command") == "sign_out")


async def _missed(hub: Hub, subscriber: Subscriber, after: str,
                  until: str) -> list[eventlog.Event] | None:
    """The events in (after, until] the subscriber hears, or None when some are no
    longer in the log (or too many to replay)."""
    found: list[eventlog.Event] = []
    cursor = after
    scanned = 0
    while eventlog.parse_offset(cursor) < eventlog.parse_offset(until):
        page = await eventlog.replay(hub.redis, cursor, until, REPLAY_PAGE)
        if not page:
            break
        scanned += len(page)
        if scanned > MAX_REPLAY:
            return None
        found.extend(e for e in page if subscriber.audience.hears(e))
        cursor = page[-1].offset
    # Checked after reading: a trim while we read cannot go unnoticed.
    if await eventlog.lost_after(hub.redis, after):
        return None
    return found
