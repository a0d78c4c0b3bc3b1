"""Sidecar tracks: audio and subtitle files uploaded beside an asset's master.

Each is one more input of the asset's next run (``pipeline``): an audio file
becomes one more audio rendition, a subtitle file (stored as WebVTT) one more
subtitle rendition. The rows go with their asset (ON DELETE CASCADE); the files
live under the asset's source prefix, which is deleted with it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.assets.records import Asset
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, utcnow


class Kind(enum.StrEnum):
    AUDIO = "audio"
    SUBTITLES = "subtitles"


class Track(Base):
    __tablename__ = "asset_tracks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey(Asset.id, ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # BCP-47 (transcode.languages); None: undetermined.
    language: Mapped[str | None] = mapped_column(String(35), nullable=True)
    # What a menu shows, already cleaned (transcode.audio.clean_label).
    name: Mapped[str] = mapped_column(String(64))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    object_key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "asset": self.asset_id, "kind": self.kind,
                "language": self.language, "name": self.name, "forced": self.forced,
                "size": self.size, "created_at": iso(self.created_at)}


def of_asset(session: Session, asset_id: str) -> list[Track]:
    """The asset's tracks, oldest first: the order their renditions are listed in."""
    return list(session.scalars(select(Track).where(Track.asset_id == asset_id)
                                .order_by(Track.created_at, Track.id)))
