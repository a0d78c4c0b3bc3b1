"""What webhook work is waiting, read at scrape time (``stb_webhook_backlog``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from stb_origin import eventlog
from stb_origin.observability import metrics
from stb_origin.services import Services
from stb_origin.webhooks import deliveries
from stb_origin.webhooks.consumer import GROUP

log = logging.getLogger("stb_origin.webhooks")


class Backlog:
    """A prometheus_client collector: one XINFO GROUPS and one indexed count."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        values: list[tuple[tuple[str], float]] = []
        try:
            groups: Any = self.services.redis.xinfo_groups(eventlog.STREAM)
            for group in groups:
                if _text(group.get("name")) == GROUP:
                    # lag: entries no consumer was given yet; pending: given, not acknowledged.
                    values.append((("events",), float((group.get("lag") or 0)
                                                       + (group.get("pending") or 0))))
        except RedisError:  # no stream yet, or Redis away: no sample
            pass
        try:
            with self.services.db.session() as session:
                values.append((("deliveries",), float(deliveries.pending_count(session))))
        except SQLAlchemyError as exc:
            log.warning("metrics: webhook deliveries uncounted",
                        extra={"error": type(exc).__name__})
        yield metrics.WEBHOOK_BACKLOG.family(values)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
