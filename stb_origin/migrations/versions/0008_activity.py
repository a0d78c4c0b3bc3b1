"""Playback activity: resume points per asset and recently watched channels, per
account and profile.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("activity_assets",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("position_s", sa.Float(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "profile", "asset_id"),
    )
    op.create_index("ix_activity_assets_row", "activity_assets",
                    ["account_id", "profile", "reported_at"])
    op.create_table("activity_channels",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "profile", "channel_id"),
    )
    op.create_index("ix_activity_channels_row", "activity_channels",
                    ["account_id", "profile", "reported_at"])


def downgrade() -> None:
    op.drop_index("ix_activity_channels_row", table_name="activity_channels")
    op.drop_table("activity_channels")
    op.drop_index("ix_activity_assets_row", table_name="activity_assets")
    op.drop_table("activity_assets")
