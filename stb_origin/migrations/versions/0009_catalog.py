"""The catalog: titles (movies, series, episodes), genres, asset links and artwork.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _times() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table("genres",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_table("titles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("series_id", sa.String(length=32), nullable=True),
        sa.Column("season_number", sa.Integer(), nullable=True),
        sa.Column("episode_number", sa.Integer(), nullable=True),
        sa.Column("rating_scheme", sa.String(length=16), nullable=True),
        sa.Column("age_limit", sa.Integer(), nullable=True),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        *_times(),
        sa.ForeignKeyConstraint(["series_id"], ["titles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id", "season_number", "episode_number",
                            name="uq_titles_episode"),
    )
    op.create_index("ix_titles_created", "titles", ["created_at", "id"])
    op.create_index("ix_titles_kind", "titles", ["kind"])
    op.create_index("ix_titles_series_id", "titles", ["series_id"])
    op.create_table("artwork",
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("sizes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["title_id"], ["titles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("title_id", "kind"),
    )
    op.create_table("title_assets",
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["title_id"], ["titles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("title_id", "asset_id"),
    )
    op.create_index("ix_title_assets_asset_id", "title_assets", ["asset_id"])
    op.create_table("title_genres",
        sa.Column("title_id", sa.String(length=32), nullable=False),
        sa.Column("genre_slug", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["genre_slug"], ["genres.slug"]),
        sa.ForeignKeyConstraint(["title_id"], ["titles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("title_id", "genre_slug"),
    )
    op.create_index("ix_title_genres_genre_slug", "title_genres", ["genre_slug"])


def downgrade() -> None:
    op.drop_index("ix_title_genres_genre_slug", table_name="title_genres")
    op.drop_table("title_genres")
    op.drop_index("ix_title_assets_asset_id", table_name="title_assets")
    op.drop_table("title_assets")
    op.drop_table("artwork")
    op.drop_index("ix_titles_series_id", table_name="titles")
    op.drop_index("ix_titles_kind", table_name="titles")
    op.drop_index("ix_titles_created", table_name="titles")
    op.drop_table("titles")
    op.drop_table("genres")
