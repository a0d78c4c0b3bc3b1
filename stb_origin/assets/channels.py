"""Channel records: a live channel's configuration and the state its runner reports.

A channel is content packages hold, like an asset: its id shares the assets'
namespace (32 hex characters, ``db.types.new_id``), so the key path, the stamps
and the entitlement checks treat both alike. What runs a channel (``live``)
writes its state here under the channel's fencing token (``epoch``): a runner
that lost the channel can no longer write.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base
from stb_origin.db.paging import UnknownCursor
from stb_origin.db.types import UtcDateTime, iso, utcnow

DEFAULT_SEGMENT_S = 2.0
DEFAULT_DVR_WINDOW_S = 4 * 3600
DEFAULT_KEY_ROTATION_S = 600
DEFAULT_FAILOVER_AFTER_S = 6.0
PASSTHROUGH = "passthrough"
AUTO = "auto"


class ChannelStatus(enum.StrEnum):
    STARTING = "starting"
    LIVE = "live"
    NO_SIGNAL = "no_signal"  # every source is gone: the slate is on air
    FAILED = "failed"


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    # The primary first, then the backups in the order they are tried.
    sources: Mapped[list[str]] = mapped_column(JSON)
    # "auto" (rungs from a probe of the source), "passthrough" (repackage only)
    # or a list of rung heights, tallest first.
    ladder: Mapped[str | list[int]] = mapped_column(JSON)
    segment_s: Mapped[float] = mapped_column(Float, default=DEFAULT_SEGMENT_S)
    dvr_window_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_DVR_WINDOW_S)
    key_rotation_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_KEY_ROTATION_S)
    failover_after_s: Mapped[float] = mapped_column(Float, default=DEFAULT_FAILOVER_AFTER_S)
    # Bumped by the API on every change of the above: a runner restarts on it.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # The fencing token of the runner holding the channel (live.lease).
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    # What the runner encodes, for the master playlist: name, bandwidth,
    # resolution, codecs, frame rate of each rendition (None until it started).
    renditions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=ChannelStatus.STARTING.value)
    active_source: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_bitrate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_segment_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "number": self.number,
            "sources": list(self.sources),
            "ladder": self.ladder,
            "segment_seconds": self.segment_s,
            "dvr_window_seconds": self.dvr_window_s,
            "key_rotation_seconds": self.key_rotation_s,
            "failover_after_seconds": self.failover_after_s,
            "revision": self.revision,
            "status": self.status,
            "active_source": self.active_source,
            "input_bitrate": self.input_bitrate,
            "last_segment_at": iso(self.last_segment_at),
            "error": self.error_message,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def page_by_number(session: Session, limit: int, after: str | None) -> list[Channel]:
    """Channels by number, unnumbered ones last (by id), after the channel ``after``."""
    query = select(Channel).order_by(Channel.number.is_(None), Channel.number, Channel.id)
    if after is not None:
        cursor = session.get(Channel, after)
        if cursor is None:
            raise UnknownCursor()
        if cursor.number is None:
            query = query.where(Channel.number.is_(None), Channel.id > cursor.id)
        else:
            query = query.where(or_(
                Channel.number > cursor.number,
                and_(Channel.number == cursor.number, Channel.id > cursor.id),
                Channel.number.is_(None)))
    return list(session.scalars(query.limit(limit)))
