"""Live-to-VOD clips: which of a channel's segments an asset is made of.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("clips",
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id"),
    )
    op.create_index("ix_clips_channel_id", "clips", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_clips_channel_id", table_name="clips")
    op.drop_table("clips")
