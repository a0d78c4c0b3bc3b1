"""One attempt of one delivery, as an RQ job runs it: check the target again, sign,
POST, record.

The target is checked at every attempt (its name may resolve elsewhere since the
webhook was made), and the POST goes to the address just checked. A target now
refused counts as a failed attempt, in words in the delivery log, and is retried
like any other: the name may point outside again later.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import configure_mappers

from stb_origin.db import Database
from stb_origin.envelope import UnwrapError
from stb_origin.observability import metrics
from stb_origin.services import Services
from stb_origin.webhooks import deliveries, signing, targets
from stb_origin.webhooks.sender import Outcome, post

log = logging.getLogger("stb_origin.webhooks")


def run(services: Services, delivery_id: str, number: int) -> str:
    """The delivery's state after the attempt, or "skipped" when it was not due
    (made already, delivered, given up, or its webhook paused or deleted)."""
    settings = services.settings
    with services.db.session() as session:
        found = deliveries.due_attempt(session, delivery_id, number)
        if found is None:
            return "skipped"
        delivery, webhook = found
        url, body = webhook.url, delivery.body.encode()
    try:
        secret = signing.unseal(services.envelope, webhook.id, webhook.wrapped_secret)
        target = targets.parse(url, settings.webhooks_allow_http)
        address = targets.resolve(target, settings.webhooks_allow_private)[0]
    except UnwrapError:  # not under this KEK: counted and given up like any failure
        outcome = Outcome(None, "the signing secret does not open under this key-encryption"
                                " key", 0)
    except targets.BadTarget as exc:
        outcome = Outcome(None, f"refused: {exc}"[:200], 0)
    else:
        timestamp = int(time.time())
        outcome = post(target, address, {
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature(secret, timestamp, body),
            "X-Stb-Event": delivery.event_type,
            "X-Stb-Delivery": delivery_id,
        }, body, settings.webhooks_timeout_s)
    limits = deliveries.Limits(settings.webhooks_max_attempts, settings.webhooks_max_age_s,
                               settings.webhooks_backoff_s)
    with services.db.session() as session:
        state = deliveries.record(session, delivery_id, number, outcome, limits)
    if state is None:
        return "skipped"
    metrics.WEBHOOK_DELIVERIES.inc(services.redis, outcome=_outcome(state, outcome))
    # The URL may hold a token in its query: the log names the webhook, never it.
    log.info("webhook attempt", extra={"webhook_id": webhook.id, "delivery_id": delivery_id,
                                       "attempt": number, "status_code": outcome.status_code,
                                       "error": outcome.error, "state": state})
    return state


def warm_up(db: Database) -> None:
    """Set up SQLAlchemy's per-process state for an attempt's queries (mapper
    configuration, statement caches) once, in the worker's main process: every work
    horse it forks inherits it instead of paying for it on each ~10 ms attempt
    (about 0.2 s before, bench/webhooks.py)."""
    configure_mappers()
    with db.session() as session:
        deliveries.due_attempt(session, "0" * 32, 1)


def _outcome(state: str, outcome: Outcome) -> str:
    if outcome.delivered:
        return "delivered"
    return "gave_up" if state == "failed" else "retrying"
