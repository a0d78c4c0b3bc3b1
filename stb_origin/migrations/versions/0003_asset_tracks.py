"""Sidecar tracks: audio and subtitle files uploaded beside an asset's master.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("asset_tracks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("object_key", sa.String(length=300), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_asset_tracks_asset_id", "asset_tracks", ["asset_id"])


def downgrade() -> None:
    op.drop_index("ix_asset_tracks_asset_id", table_name="asset_tracks")
    op.drop_table("asset_tracks")
