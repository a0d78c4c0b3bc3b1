"""The programme guide: programmes, the XMLTV channel mapping and guide sources.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("guide_sources",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("refresh_s", sa.Integer(), nullable=False),
        sa.Column("next_fetch_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("last_report", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_guide_sources_next_fetch_at", "guide_sources", ["next_fetch_at"])
    op.create_table("guide_channel_map",
        sa.Column("xmltv_id", sa.String(length=255), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("xmltv_id"),
    )
    op.create_index("ix_guide_channel_map_channel_id", "guide_channel_map", ["channel_id"])
    op.create_table("programmes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("subtitle", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("episode", sa.String(length=100), nullable=True),
        sa.Column("rating", sa.String(length=100), nullable=True),
        sa.Column("icon_url", sa.String(length=2000), nullable=True),
        sa.Column("xmltv_channel", sa.String(length=255), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_programmes_channel_start", "programmes", ["channel_id", "starts_at"],
                    unique=True)
    op.create_index("ix_programmes_ends_at", "programmes", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_programmes_ends_at", table_name="programmes")
    op.drop_index("ix_programmes_channel_start", table_name="programmes")
    op.drop_table("programmes")
    op.drop_index("ix_guide_channel_map_channel_id", table_name="guide_channel_map")
    op.drop_table("guide_channel_map")
    op.drop_index("ix_guide_sources_next_fetch_at", table_name="guide_sources")
    op.drop_table("guide_sources")
