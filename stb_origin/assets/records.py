"""Asset records: the table and the few operations the rest of the system needs."""

from __future__ import annotations

import enum
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base, Database
from stb_origin.db.paging import newest_first
from stb_origin.db.types import UtcDateTime, iso, utcnow

log = logging.getLogger("stb_origin.assets")


class Status(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

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
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def get(session: Session, asset_id: str) -> Asset | None:
    return session.get(Asset, asset_id)


def page(session: Session, limit: int, after: str | None) -> list[Asset]:
    return newest_first(session, Asset, select(Asset), limit, after)


def mark_failed(db: Database, asset_id: str, code: str, message: str) -> None:
    with db.session() as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return
        asset.status = Status.FAILED.value
        asset.error_code = code
        asset.error_message = message[:2000]
    log.warning("asset failed", extra={"asset_id": asset_id, "code": code})
