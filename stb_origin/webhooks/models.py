"""The tables: subscriptions, one delivery per (subscription, event), and each attempt."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, new_id, utcnow


class State(enum.StrEnum):
    PENDING = "pending"  # an attempt is due at next_attempt_at (or under way)
    DELIVERED = "delivered"  # the target answered 2xx
    FAILED = "failed"  # gave up: out of attempts or past the maximum age


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signing secret, envelope-sealed to this webhook's id (webhooks.secrets).
    wrapped_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"Webhook(id={self.id!r})"  # never the URL's query or the secret

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events),
                "active": self.active, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


class Delivery(Base):
    __tablename__ = "webhook_deliveries"
    # One per subscription and event: turning an event into deliveries again
    # (a consumer that died before its acknowledgement) adds nothing.
    __table_args__ = (UniqueConstraint("webhook_id", "event_id"),
                      Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
                      Index("ix_webhook_deliveries_log", "webhook_id", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey(Webhook.id, ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(41))
    event_type: Mapped[str] = mapped_column(String(64))
    # The exact bytes every attempt sends (and signs).
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=State.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A redelivery starts a new round: the give-up limits count from its start.
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    round_started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Set when an attempt is handed to the queue: until then no other process
    # hands it over again; past it, the job is taken for lost.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    def to_json(self, attempts: list[Attempt]) -> dict[str, Any]:
        return {"id": self.id, "event_id": self.event_id, "type": self.event_type,
                "state": self.state, "attempts": [a.to_json() for a in attempts],
                "next_attempt_at": iso(self.next_attempt_at)
                if self.state == State.PENDING.value else None,
                "created_at": iso(self.created_at)}


class Attempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey(Delivery.id, ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # In words: "time-out after 10 s", "connection refused", "refused: private address".
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "at": iso(self.at), "status_code": self.status_code,
                "error": self.error, "duration_ms": self.duration_ms}
