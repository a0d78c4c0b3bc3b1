"""Live channels, the packages holding them, and their segment index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("channels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("ladder", sa.JSON(), nullable=False),
        sa.Column("segment_s", sa.Float(), nullable=False),
        sa.Column("dvr_window_s", sa.Integer(), nullable=False),
        sa.Column("key_rotation_s", sa.Integer(), nullable=False),
        sa.Column("failover_after_s", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("renditions", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("active_source", sa.Integer(), nullable=True),
        sa.Column("input_bitrate", sa.Integer(), nullable=True),
        sa.Column("last_segment_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_table("live_segments",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("discontinuity", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("iv", sa.String(length=32), nullable=False),
        sa.Column("renditions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", "seq"),
    )
    op.create_index("ix_live_segments_channel_time", "live_segments",
                    ["channel_id", "starts_at"])
    op.create_table("package_channels",
        sa.Column("package_name", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["package_name"], ["packages.name"]),
        sa.PrimaryKeyConstraint("package_name", "channel_id"),
    )
    op.create_index("ix_package_channels_channel_id", "package_channels", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_package_channels_channel_id", table_name="package_channels")
    op.drop_table("package_channels")
    op.drop_index("ix_live_segments_channel_time", table_name="live_segments")
    op.drop_table("live_segments")
    op.drop_table("channels")
