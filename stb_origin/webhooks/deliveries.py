"""Delivery rows: made from events, handed out when due, and each attempt recorded.

A delivery is ``pending`` until an attempt gets a 2xx (``delivered``) or the
limits run out (``failed``). Handing an attempt to the queue *claims* the row
until ``claimed_until``: no other process hands it out meanwhile, and a job
lost with its Redis or worker is handed out again once the claim lapses. An
attempt is recorded only if the row still has the attempt count the job was
given, so a job that runs twice records (and counts) once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import NotFound
from stb_origin.db.paging import newest_first
from stb_origin.db.types import new_id, utcnow
from stb_origin.webhooks.models import Attempt, Delivery, State, Webhook
from stb_origin.webhooks.sender import Outcome

MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class Limits:
    max_attempts: int
    max_age_s: float
    backoff_s: float


@dataclass(frozen=True)
class NewDelivery:
    webhook_id: str
    event_id: str
    event_type: str
    body: str


def add(session: Session, rows: Iterable[NewDelivery], now: datetime) -> int:
    """Insert the deliveries not already there; how many were new."""
    values = [{"id": new_id(), "webhook_id": row.webhook_id, "event_id": row.event_id,
               "event_type": row.event_type, "body": row.body, "state": State.PENDING.value,
               "attempts": 0, "round_attempts": 0, "round_started_at": now,
               "next_attempt_at": now, "created_at": now, "updated_at": now} for row in rows]
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result: Any = session.execute(insert(Delivery).values(values).on_conflict_do_nothing(
        index_elements=["webhook_id", "event_id"]))
    return int(result.rowcount or 0)


def claim_due(session: Session, now: datetime, claim_s: float,
              limit: int = 200) -> list[tuple[str, int]]:
    """Claim the pending deliveries due now (of active webhooks): (id, attempt number)."""
    unclaimed = or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now)
    rows = session.execute(
        select(Delivery.id, Delivery.attempts).join(Webhook, Webhook.id == Delivery.webhook_id)
        .where(Delivery.state == State.PENDING.value, Delivery.next_attempt_at <= now,
               unclaimed, Webhook.active.is_(True))
        .order_by(Delivery.next_attempt_at).limit(limit)).all()
    claimed = []
    for delivery_id, attempts in rows:
        # Conditional: of processes claiming at once, one wins each row.
        result: Any = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.attempts == attempts,
                                   Delivery.state == State.PENDING.value, unclaimed)
            .values(claimed_until=now + timedelta(seconds=claim_s)))
        if result.rowcount == 1:
            claimed.append((delivery_id, attempts + 1))
    return claimed


def due_attempt(session: Session, delivery_id: str,
                number: int) -> tuple[Delivery, Webhook] | None:
    """The delivery and its webhook if attempt ``number`` is still the one to make."""
    found = session.execute(select(Delivery, Webhook).join(
        Webhook, Webhook.id == Delivery.webhook_id).where(Delivery.id == delivery_id)).first()
    if found is None:
        return None
    delivery, webhook = found
    if (delivery.state != State.PENDING.value or delivery.attempts != number - 1
            or not webhook.active):
        return None
    return delivery, webhook


def record(session: Session, delivery_id: str, number: int, outcome: Outcome,
           limits: Limits, now: datetime | None = None) -> str | None:
    """Record attempt ``number``; the delivery's new state, or None when another
    run of the same attempt recorded it first."""
    now = now or utcnow()
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.attempts != number - 1:
        return None
    round_attempts = delivery.round_attempts + 1
    next_at: datetime | None = None
    if outcome.delivered:
        state = State.DELIVERED
    else:
        next_at = now + timedelta(seconds=backoff(limits.backoff_s, round_attempts))
        too_old = next_at - delivery.round_started_at > timedelta(seconds=limits.max_age_s)
        state = (State.FAILED if round_attempts >= limits.max_attempts or too_old
                 else State.PENDING)
    result: Any = session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.attempts == number - 1)
        .values(attempts=number, round_attempts=round_attempts, state=state.value,
                next_attempt_at=next_at if state == State.PENDING else None,
                claimed_until=None, updated_at=now))
    if result.rowcount != 1:
        return None
    session.add(Attempt(delivery_id=delivery_id, number=number, at=now,
                        status_code=outcome.status_code, error=outcome.error,
                        duration_ms=outcome.duration_ms))
    return state.value


def backoff(base_s: float, attempts: int) -> float:
    """Seconds before the next attempt: doubling, capped, with "equal jitter" (half
    fixed, half random) so that deliveries failing together do not retry together."""
    delay = min(base_s * 2 ** (attempts - 1), MAX_BACKOFF_S)
    return delay / 2 + random.uniform(0, delay / 2)


def log_page(session: Session, webhook_id: str, limit: int,
             after: str | None) -> list[dict[str, Any]]:
    """A page of a webhook's deliveries, newest first, each with its attempts."""
    page = newest_first(session, Delivery,
                        select(Delivery).where(Delivery.webhook_id == webhook_id), limit, after)
    attempts: dict[str, list[Attempt]] = {}
    if page:
        for attempt in session.scalars(
                select(Attempt).where(Attempt.delivery_id.in_([d.id for d in page]))
                .order_by(Attempt.delivery_id, Attempt.number)):
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return [delivery.to_json(attempts.get(delivery.id, [])) for delivery in page]


def redeliver(session: Session, webhook_id: str, delivery_id: str,
              now: datetime | None = None) -> dict[str, Any]:
    """Send a delivery again, whatever became of it: a new round, due now."""
    now = now or utcnow()
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound("no such delivery")
    delivery.state = State.PENDING.value
    delivery.round_attempts = 0
    delivery.round_started_at = delivery.next_attempt_at = delivery.updated_at = now
    session.flush()
    attempts = list(session.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id)
                                    .order_by(Attempt.number)))
    return delivery.to_json(attempts)


def prune(session: Session, finished_before: datetime, limit: int = 1000) -> int:
    """Delete up to ``limit`` deliveries finished before the time (their attempts go
    with them); how many."""
    old = (select(Delivery.id).where(Delivery.state != State.PENDING.value,
                                     Delivery.updated_at < finished_before).limit(limit))
    result: Any = session.execute(delete(Delivery).where(Delivery.id.in_(old.scalar_subquery())))
    return int(result.rowcount or 0)


def pending_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.state == State.PENDING.value)) or 0)
