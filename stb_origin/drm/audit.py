"""The key audit: one row per key request answered after the token was verified.

Who asked (subject, account, device, client), for which asset and key id, when,
from where (the peer address and X-Forwarded-For as given), and the outcome.
Never the key, never the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base
from stb_origin.db.paging import newest_first
from stb_origin.db.types import UtcDateTime, new_id, utcnow

DELIVERED = "delivered"
# X-Forwarded-For is whatever the client and the proxies on the way wrote.
MAX_FORWARDED_FOR = 256


class KeyAudit(Base):
    __tablename__ = "key_audit"
    __table_args__ = (
        Index("ix_key_audit_asset_created", "asset_id", "created_at"),
        Index("ix_key_audit_device_created", "device_id", "created_at"),
        Index("ix_key_audit_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    subject: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    asset_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    # "delivered", or why not: a drm.access.Refusal, "not_found", "rate_limited",
    # "too_many_streams".
    outcome: Mapped[str] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forwarded_for: Mapped[str | None] = mapped_column(String(MAX_FORWARDED_FOR), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.created_at.isoformat(),
            "subject": self.subject,
            "account": self.account_id,
            "device": self.device_id,
            "client": self.client_id,
            "asset": self.asset_id,
            "key_id": self.key_id,
            "outcome": self.outcome,
            "client_address": self.client_address,
            "forwarded_for": self.forwarded_for,
            "request_id": self.request_id,
        }


@dataclass(frozen=True)
class KeyRequest:
    """What the audit keeps of one key request."""

    subject: str
    device_id: str | None
    client_id: str | None
    asset_id: str
    key_id: str
    client_address: str | None
    forwarded_for: str | None
    request_id: str | None


def row(request: KeyRequest, outcome: str, at: datetime,
        account_id: str | None = None) -> dict[str, Any]:
    """The column values of one audit row but its id (for an ORM object, whose
    default gives one, or drm.auditwriter's batch insert, which gives them)."""
    forwarded = request.forwarded_for
    return {
        "created_at": at, "subject": request.subject, "account_id": account_id,
        "device_id": request.device_id, "client_id": request.client_id,
        "asset_id": request.asset_id, "key_id": request.key_id, "outcome": outcome,
        "client_address": request.client_address,
        "forwarded_for": forwarded[:MAX_FORWARDED_FOR] if forwarded is not None else None,
        "request_id": request.request_id}


def record(session: Session, request: KeyRequest, outcome: str, at: datetime,
           account_id: str | None = None) -> None:
    session.add(KeyAudit(**row(request, outcome, at, account_id)))


def purge(session: Session, before: datetime, batch: int = 10_000) -> int:
    """Delete rows older than ``before``, ``batch`` at a time (short transactions
    on a busy table); returns how many went. The caller commits between calls."""
    oldest = select(KeyAudit.id).where(KeyAudit.created_at < before).limit(batch)
    result = session.execute(delete(KeyAudit).where(KeyAudit.id.in_(oldest)))
    return int(getattr(result, "rowcount", 0) or 0)


def page(session: Session, limit: int, after: str | None, asset_id: str | None = None,
         device_id: str | None = None) -> list[KeyAudit]:
    """Newest first, keyset-paginated on (created_at, id) like the accounts lists."""
    query = select(KeyAudit)
    if asset_id is not None:
        query = query.where(KeyAudit.asset_id == asset_id)
    if device_id is not None:
        query = query.where(KeyAudit.device_id == device_id)
    # newest_first's TypeVar names the accounts models; it only needs
    # created_at and id, which KeyAudit has.
    return newest_first(session, KeyAudit, query, limit, after)  # type: ignore[type-var]
