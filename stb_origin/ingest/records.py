"""Asset records: the table and the few operations the rest of the system needs."""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base


class Status(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


def new_asset_id() -> str:
    # 128 bits, URL-safe, no padding: unguessable and safe as a path segment.
    return secrets.token_hex(16)


def _now() -> datetime:
    return datetime.now(UTC)


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.QUEUED.value, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    source_key: Mapped[str] = mapped_column(String(300))
    source_size: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    renditions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # versioned output prefix currently behind master.m3u8, e.g. "v3f9a..."
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now
    )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "progress": self.progress,
            "error": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code else None
            ),
            "duration_s": self.duration_s,
            "source": self.source,
            "renditions": self.renditions or [],
            "playback": {"hls": f"/hls/{self.id}/master.m3u8"},
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def get(session: Session, asset_id: str) -> Asset | None:
    return session.get(Asset, asset_id)


def page(session: Session, limit: int, after: str | None) -> list[Asset]:
    """Keyset pagination ordered by (created_at, id)."""
    query = select(Asset).order_by(Asset.created_at.desc(), Asset.id.desc())
    if after is not None:
        cursor = session.get(Asset, after)
        if cursor is not None:
            query = query.where(
                (Asset.created_at < cursor.created_at)
                | ((Asset.created_at == cursor.created_at) & (Asset.id < cursor.id))
            )
    return list(session.scalars(query.limit(limit)))
