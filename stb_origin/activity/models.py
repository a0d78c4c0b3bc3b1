"""What boxes reported watching, per account and profile: one row per asset (its
resume point) and one per channel (when it was last watched).

Rows are keyed by (account, profile, item) and only ever upserted, so a report
sent twice, or by two boxes at once, leaves one row. ``reported_at`` is the
box's own clock, in UTC: the later report wins, whatever order they arrive in.
A deleted asset or channel takes its rows with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.accounts.models import Account
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, utcnow

PROFILE_LENGTH = 32


class ResumePoint(Base):
    __tablename__ = "activity_assets"
    __table_args__ = (
        # The continue-watching row: one profile's items, most recent first.
        Index("ix_activity_assets_row", "account_id", "profile", "reported_at"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey(Account.id, ondelete="CASCADE"),
                                            primary_key=True)
    profile: Mapped[str] = mapped_column(String(PROFILE_LENGTH), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey(Asset.id, ondelete="CASCADE"),
                                          primary_key=True)
    position_s: Mapped[float] = mapped_column(Float)
    # Past activity.store.FINISHED_AT of the asset's duration: off the row.
    finished: Mapped[bool] = mapped_column(Boolean)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    device_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ChannelVisit(Base):
    __tablename__ = "activity_channels"
    __table_args__ = (
        Index("ix_activity_channels_row", "account_id", "profile", "reported_at"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey(Account.id, ondelete="CASCADE"),
                                            primary_key=True)
    profile: Mapped[str] = mapped_column(String(PROFILE_LENGTH), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"),
                                            primary_key=True)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    device_id: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
