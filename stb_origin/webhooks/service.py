"""The webhook consumer as a background task of the HTTP server (its lifespan).

Every server process runs one: the consumer group shares the events out, and the
claims share the due attempts. Stopping (SIGTERM) cancels it between turns; a
turn in progress (at most ``BLOCK_MS`` waiting, then its commit and
acknowledgement) finishes first, and whatever a killed process left is taken up
by the others (``consumer``).
"""

from __future__ import annotations

import logging

import anyio

from stb_origin.services import Services
from stb_origin.webhooks.consumer import Consumer

log = logging.getLogger("stb_origin.webhooks")

BLOCK_MS = 1000
RETRY_S = 2.0


async def watch(services: Services) -> None:
    consumer = Consumer(services)
    failing = False
    while True:
        try:
            await anyio.to_thread.run_sync(consumer.turn, BLOCK_MS)
        except Exception as exc:  # Redis or the database away: the next turn
            if not failing:
                log.warning("webhook consumer failed; retrying",
                            extra={"error": type(exc).__name__})
            failing = True
            await anyio.sleep(RETRY_S)
        else:
            if failing:
                log.info("webhook consumer works again")
            failing = False
