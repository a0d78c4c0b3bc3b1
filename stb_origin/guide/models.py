"""The guide's tables: programmes, which XMLTV channel feeds which channel, and the
XMLTV sources fetched on a schedule.

Times are UTC (``UtcDateTime``). A channel's programmes never overlap: an import
replaces every programme of the channel that overlaps the span it brings
(``guide.store``), and resolves overlaps within the file before that
(``guide.plan``); the unique (channel, start) index is the backstop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.assets.channels import Channel
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, utcnow

MAX_XMLTV_ID = 255
MAX_URL = 2000


class Programme(Base):
    __tablename__ = "programmes"
    # "Programmes of these channels overlapping [from, to)": channel_id = ? AND
    # starts_at < to AND starts_at > from - 24 h (no programme is longer: guide.plan)
    # AND ends_at > from; one index range per channel.
    __table_args__ = (Index("ix_programmes_channel_start", "channel_id", "starts_at",
                            unique=True),
                      # what retention deletes: programmes long over (guide.store.prune)
                      Index("ix_programmes_ends_at", "ends_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    title: Mapped[str] = mapped_column(Text)
    subtitle: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    categories: Mapped[list[str]] = mapped_column(JSON)
    # "S1 E5" from xmltv_ns (zero-based in the file), or the onscreen form as given.
    episode: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rating: Mapped[str | None] = mapped_column(String(100), nullable=True)
    icon_url: Mapped[str | None] = mapped_column(String(MAX_URL), nullable=True)
    xmltv_channel: Mapped[str] = mapped_column(String(MAX_XMLTV_ID))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChannelMapping(Base):
    """An XMLTV channel id (``<channel id="bbc1.uk">``) and the channel it feeds."""

    __tablename__ = "guide_channel_map"

    xmltv_id: Mapped[str] = mapped_column(String(MAX_XMLTV_ID), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"),
                                            index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"xmltv_id": self.xmltv_id, "channel": self.channel_id,
                "created_at": iso(self.created_at)}


class GuideSource(Base):
    """An XMLTV URL the operator gave, fetched every ``refresh_s``."""

    __tablename__ = "guide_sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL))
    refresh_s: Mapped[int] = mapped_column(Integer)
    # When the next fetch is due: the poller claims a source by moving this on.
    next_fetch_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # "ok" or "failed"; None before the first fetch.
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_error: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "refresh_seconds": self.refresh_s,
            "next_fetch_at": iso(self.next_fetch_at),
            "last_fetch_at": iso(self.last_fetch_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_report": self.last_report,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
