"""The webhook consumer as a background task of the HTTP server (its lifespan).

Every server process runs one: the consumer group shares the events out, and the
claims share the due attempts. It polls (a turn never blocks on Redis, and rests
``IDLE_S`` when it found nothing), so stopping (SIGTERM) cancels it in its rest at
once, or lets a turn in progress finish its commit and acknowledgement first;
whatever a killed process left is taken up by the others (``consumer``).
"""

from __future__ import annotations

import logging

import anyio

from stb_origin.services import Services
from stb_origin.webhooks.consumer import BATCH, Consumer

log = logging.getLogger("stb_origin.webhooks")

# An event waits at most this long (plus a turn) before it is made into deliveries.
IDLE_S = 0.5
RETRY_S = 2.0


async def watch(services: Services) -> None:
    consumer = Consumer(services)
    failing = False
    while True:
        try:
            taken = await anyio.to_thread.run_sync(consumer.turn)
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
            if taken < BATCH:  # caught up
                await anyio.sleep(IDLE_S)
