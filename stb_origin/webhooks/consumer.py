"""From the event log to delivery rows, exactly once across any number of processes.

The processes share one consumer group on the log's stream: Redis hands each
entry to one of them. An entry is acknowledged only after its delivery rows are
committed; one whose consumer died before acknowledging (it sits in the group's
pending list) is claimed by another after ``claim_idle_ms``, and turning it into
rows again adds none (one row per subscription and event). Events published
before the group existed are not delivered: a subscription hears from its
creation on.

The same turn hands the due attempts (new deliveries, retries whose back-off
ran out, lost jobs whose claim lapsed) to the RQ workers (``dispatch``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import timedelta
from typing import Any

from redis.exceptions import ResponseError

from stb_origin import eventlog
from stb_origin.db.types import utcnow
from stb_origin.queues import enqueue_webhook, webhook_queue
from stb_origin.services import Services
from stb_origin.webhooks import deliveries, subscriptions
from stb_origin.webhooks.event_types import body, event_type

log = logging.getLogger("stb_origin.webhooks")

GROUP = "webhooks"
BATCH = 100
# An entry a consumer took this long ago without acknowledging: its consumer died.
CLAIM_IDLE_MS = 30_000
# How often a consumer tidies: old deliveries out of the log, dead consumers out of
# the group (each process that ever ran is a consumer, named after its pid).
TIDY_EVERY_S = 300.0
FORGET_IDLE_MS = 24 * 3600 * 1000


class Consumer:
    def __init__(self, services: Services, name: str | None = None,
                 claim_idle_ms: int = CLAIM_IDLE_MS, forget_idle_ms: int = FORGET_IDLE_MS) -> None:
        self.services = services
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self.forget_idle_ms = forget_idle_ms
        self._tidied_at: float | None = None
        self.queue = webhook_queue(services.redis, services.settings)
        self._group_ready = False

    def turn(self, block_ms: int | None = None) -> int:
        """Take a batch (what dead consumers left first, else new entries, waiting
        up to ``block_ms`` if given), make its deliveries, acknowledge it, then
        dispatch what is due. How many entries it took."""
        entries = self._take(block_ms)
        if entries:
            self._make_deliveries(entries)
            self.services.redis.xack(eventlog.STREAM, GROUP, *[offset for offset, _ in entries])
        dispatch(self.services, self.queue)
        if self._tidied_at is None or time.monotonic() - self._tidied_at > TIDY_EVERY_S:
            self.tidy()
        return len(entries)

    def tidy(self) -> None:
        """Drop finished deliveries past the log's time, and consumers idle for a day
        that hold nothing (processes long gone; a live one idles a turn at most)."""
        self._tidied_at = time.monotonic()
        days = self.services.settings.webhooks_log_days
        with self.services.db.session() as session:
            deliveries.prune(session, utcnow() - timedelta(days=days))
        redis = self.services.redis
        try:
            consumers: Any = redis.xinfo_consumers(eventlog.STREAM, GROUP)
        except ResponseError:  # no group (Redis lost it): the next turn makes it
            return
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if (name != self.name and not consumer["pending"]
                    and consumer["idle"] >= self.forget_idle_ms):
                redis.xgroup_delconsumer(eventlog.STREAM, GROUP, name)

    def _take(self, block_ms: int | None) -> list[tuple[Any, dict[bytes, bytes]]]:
        redis = self.services.redis
        try:
            self._ensure_group()
            _next, claimed, *_deleted = redis.xautoclaim(
                eventlog.STREAM, GROUP, self.name, min_idle_time=self.claim_idle_ms,
                start_id="0-0", count=BATCH)
            if claimed:
                return list(claimed)
            found: Any = redis.xreadgroup(GROUP, self.name, {eventlog.STREAM: ">"},
                                          count=BATCH, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream or group went (a Redis wiped): again
            return []
        return [entry for _stream, entries in found or () for entry in entries]

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.services.redis.xgroup_create(eventlog.STREAM, GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _make_deliveries(self, entries: list[tuple[Any, dict[bytes, bytes]]]) -> None:
        now = utcnow()
        with self.services.db.session() as session:
            wanted = subscriptions.subscribers(session)
            rows = []
            for offset, fields in entries:
                if not fields:  # trimmed from the stream while pending: nothing to read
                    continue
                try:
                    event = eventlog.decode(offset, fields)
                except ValueError:  # not JSON: skipped, or it would stop every batch after it
                    log.warning("unreadable event skipped", extra={"offset": str(offset)})
                    continue
                name = event_type(event)
                if name is None:
                    continue
                for webhook_id in wanted.get(name, ()):
                    rows.append(deliveries.NewDelivery(webhook_id, event.offset, name,
                                                       body(event, name)))
            made = deliveries.add(session, rows, now)
        if made:
            log.info("webhook deliveries made", extra={"deliveries": made,
                                                       "events": len(entries)})


def dispatch(services: Services, queue: Any = None) -> int:
    """Hand every due attempt to the workers; how many."""
    settings = services.settings
    queue = queue if queue is not None else webhook_queue(services.redis, settings)
    # Long enough for a queued job to wait behind others and run; a lost one is
    # handed out again after it.
    claim_s = max(60.0, 6 * settings.webhooks_timeout_s)
    with services.db.session() as session:
        due = deliveries.claim_due(session, utcnow(), claim_s)
    for delivery_id, attempt in due:
        enqueue_webhook(queue, delivery_id, attempt, settings.webhooks_timeout_s)
    return len(due)
