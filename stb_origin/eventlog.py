"""The event log: one Redis Stream that every process appends to and every server reads.

A stream and not pub/sub: an entry stays (up to ``MAX_EVENTS``, trimmed
approximately), so its id is an offset a client can come back with after a
reconnect, and a server that was busy or restarting misses nothing.

Domains call ``publish`` after their database commit. Publishing is best
effort: Redis being away is logged and the caller's work goes on (the database
is the truth; a client that missed events resyncs from it).

Each entry names its ``topic`` (``TOPICS``), optionally the ``key`` it is about
(an asset or channel id, for clients following one thing) and who may hear it:
an ``account`` (entitlements: that account's boxes only) or one ``device``
(commands). An entry without either goes to everyone subscribed to its topic.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("stb_origin.eventlog")

STREAM = "stb:events"
# Roughly how many entries the stream keeps: with ~100 B an entry, ~10 MB of
# Redis, and minutes to hours of history at the rates this system makes.
MAX_EVENTS = 100_000
# A payload is a small description of a change, never the changed object itself.
MAX_PAYLOAD_BYTES = 64 * 1024

ASSETS = "assets"  # status and progress of assets, for the content team
CHANNELS = "channels"  # a live channel's status changed
ENTITLEMENTS = "entitlements"  # an account's entitlements changed
COMMANDS = "commands"  # to one device: "resync", "sign_out" (which ends its connections)
CATALOG = "catalog"  # titles changed (published by the catalog)
GUIDE = "guide"  # programmes changed (published by the guide)
TOPICS = frozenset({ASSETS, CHANNELS, ENTITLEMENTS, COMMANDS, CATALOG, GUIDE})

# A stream id: milliseconds, a dash, a sequence number.
_OFFSET = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")


class BadOffset(ValueError):
    """Not an offset this log ever gave out."""


@dataclass(frozen=True)
class Event:
    offset: str
    topic: str
    data: dict[str, Any]
    key: str | None = None
    account: str | None = None
    device: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.offset, "topic": self.topic, "key": self.key, "data": self.data}

    @cached_property
    def text(self) -> str:
        """to_json as compact JSON, made once however many connections send it."""
        return json.dumps(self.to_json(), separators=(",", ":"))


def parse_offset(text: str) -> tuple[int, int]:
    """The offset as a comparable pair; BadOffset unless it is ``<ms>-<seq>``."""
    found = _OFFSET.fullmatch(text)
    if found is None:
        raise BadOffset("an offset is the id of an event, like 1765000000000-0")
    return int(found[1]), int(found[2])


def publish(redis: Redis, topic: str, data: dict[str, Any], *, key: str | None = None,
            account: str | None = None, device: str | None = None) -> str | None:
    """Append an event; its offset, or None when Redis could not take it (logged:
    an event is never worth failing the caller's committed work for)."""
    fields = encode(topic, data, key=key, account=account, device=device)
    try:
        offset = redis.xadd(STREAM, fields, maxlen=MAX_EVENTS, approximate=True)  # type: ignore[arg-type]
    except RedisError as exc:
        log.warning("event not published", extra={"topic": topic, "error": type(exc).__name__})
        return None
    return offset.decode() if isinstance(offset, bytes) else str(offset)


def send_command(redis: Redis, device_id: str, account_id: str, command: str) -> str | None:
    """Publish a command to one device's connections (``COMMANDS``)."""
    return publish(redis, COMMANDS, {"command": command}, key=device_id, account=account_id,
                   device=device_id)


def encode(topic: str, data: dict[str, Any], *, key: str | None = None,
           account: str | None = None, device: str | None = None) -> dict[str, str]:
    """The stream entry's fields; ValueError for what no reader could use."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}")
    body = json.dumps(data, separators=(",", ":"))
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event payload over {MAX_PAYLOAD_BYTES} bytes")
    fields = {"topic": topic, "data": body}
    for name, value in (("key", key), ("account", account), ("device", device)):
        if value is not None:
            fields[name] = value
    return fields


def decode(offset: bytes | str, fields: dict[bytes, bytes]) -> Event:
    def text(name: bytes) -> str | None:
        value = fields.get(name)
        return value.decode() if value is not None else None

    return Event(offset=offset.decode() if isinstance(offset, bytes) else offset,
                 topic=text(b"topic") or "", data=json.loads(fields.get(b"data", b"{}")),
                 key=text(b"key"), account=text(b"account"), device=text(b"device"))


async def last_offset(redis: AsyncRedis) -> str:
    """The offset of the newest event ever appended ("0-0" for none)."""
    return _text((await _info(redis)).get("last-generated-id", b"0-0"))


async def lost_after(redis: AsyncRedis, after: str) -> bool:
    """Whether events after ``after`` may be gone from the log (the reader must
    resync): the log was trimmed and ``after`` is older than its first entry,
    or an entry after it was deleted. BadOffset for an offset past the newest
    event: not one this log gave out."""
    info = await _info(redis)
    wanted = parse_offset(after)
    last = parse_offset(_text(info.get("last-generated-id")))
    if wanted > last:
        raise BadOffset("no event has this offset yet")
    if parse_offset(_text(info.get("max-deleted-entry-id"))) > wanted:
        return True
    trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
    first = info.get("first-entry")
    first_offset = parse_offset(_text(first[0])) if first else None
    if first_offset is None:  # emptied: whatever came after it is gone
        return trimmed and wanted < last
    return trimmed and wanted < first_offset


async def read(redis: AsyncRedis, after: str, count: int, block_ms: int) -> list[Event]:
    """The events after ``after``, waiting up to ``block_ms`` for the first."""
    found: Any = await redis.xread({STREAM: after}, count=count, block=block_ms)
    return [decode(offset, fields) for _stream, entries in found or ()
            for offset, fields in entries]


async def replay(redis: AsyncRedis, after: str, until: str, count: int) -> list[Event]:
    """Up to ``count`` events after ``after`` and at most ``until``, oldest first."""
    found: Any = await redis.xrange(STREAM, min="(" + after, max=until, count=count)
    return [decode(offset, fields) for offset, fields in found]


async def _info(redis: AsyncRedis) -> dict[str, Any]:
    try:
        info: dict[str, Any] = await redis.xinfo_stream(STREAM)
    except ResponseError:  # no such key: nothing was ever published
        return {}
    return info


def _text(value: bytes | str | None) -> str:
    if value is None:
        return "0-0"
    return value.decode() if isinstance(value, bytes) else str(value)
