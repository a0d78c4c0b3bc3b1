"""Asset records: the table and the few operations the rest of the system needs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base
from stb_origin.db.paging import newest_first
from stb_origin.db.types import UtcDateTime, iso, utcnow


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
    # Masters of over 2 GiB are common: 64 bits (INTEGER is 32 bits on PostgreSQL;
    # SQLite's INTEGER is 64 bits already, and its column stays as it was made).
    source_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                             default=0)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    renditions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # versioned output prefix currently behind master.m3u8, e.g. "v3f9a..."
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The version's strip of thumbnails (packager.thumbnails), None when it has none.
    thumbnails: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The runs of the pipeline (assets.runs): the fencing token of the latest run,
    # when it last said it was alive, which attempt it is and when the next is due.
    run: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When the versions before ``version`` may go: none of them can still be in a
    # player's or the CDN's hands after that (assets.runs.retire_old_versions).
    prune_after: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
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
            "attempt": self.attempt,
            "next_attempt_at": iso(self.next_attempt_at),
            "duration_s": self.duration_s,
            "source": self.source,
            "renditions": self.renditions or [],
            "thumbnails": self.thumbnails,
            "playback": {"hls": f"/hls/{self.id}/master.m3u8"},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def get(session: Session, asset_id: str) -> Asset | None:
    return session.get(Asset, asset_id)


def page(session: Session, limit: int, after: str | None) -> list[Asset]:
    return newest_first(session, Asset, select(Asset), limit, after)
