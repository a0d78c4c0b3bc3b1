"""The segment index: every segment of a channel that is fully in storage.

One row per segment number across the channel's renditions (they are cut on the
same keyframes, so segment N of every rendition covers the same time). A row is
written only after every rendition's segment N is in storage, under the
runner's fencing token, so that nothing listed can be missing. Live, start-over
and catch-up playlists and clips are all read from here; retention deletes the
rows (and then the objects) that left the DVR window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.assets.channels import Channel
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime


class LiveSegment(Base):
    __tablename__ = "live_segments"
    __table_args__ = (Index("ix_live_segments_channel_time", "channel_id", "starts_at"),)

    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"),
                                            primary_key=True)
    # EXT-X-MEDIA-SEQUENCE: never reused, never goes back, across runners.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    # EXT-X-PROGRAM-DATE-TIME of the segment's first frame.
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    duration: Mapped[float] = mapped_column(Float)
    # EXT-X-DISCONTINUITY-SEQUENCE: a new value starts a discontinuity.
    discontinuity: Mapped[int] = mapped_column(Integer)
    # The runner's fencing token: part of every object name it writes.
    epoch: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(64))
    iv: Mapped[str] = mapped_column(String(32))  # hex
    # The renditions written for this segment, e.g. ["720p", "360p"].
    renditions: Mapped[list[str]] = mapped_column(JSON)
