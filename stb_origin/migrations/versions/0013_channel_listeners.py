"""Which channel listens on which port (live.listeners): one listener a port.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

Channels saved before it may already have SRT listeners: their ports are
recorded, the first channel (by id) keeping a port two of them named.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    listeners = op.create_table("channel_listeners",
        sa.Column("transport", sa.String(length=3), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("transport", "port"),
    )
    op.create_index("ix_channel_listeners_channel_id", "channel_listeners", ["channel_id"])
    channels = sa.table("channels", sa.column("id", sa.String()), sa.column("sources", sa.JSON()))
    taken: dict[int, str] = {}
    for channel_id, sources in op.get_bind().execute(
            sa.select(channels.c.id, channels.c.sources).order_by(channels.c.id)):
        for url in sources or ():
            parts = urlsplit(url)
            if parts.scheme == "srt" and ("mode", "listener") in parse_qsl(parts.query):
                taken.setdefault(parts.port or 0, channel_id)
    taken.pop(0, None)
    if taken:
        op.bulk_insert(listeners, [{"transport": "udp", "port": port, "channel_id": channel_id}
                                   for port, channel_id in sorted(taken.items())])


def downgrade() -> None:
    op.drop_index("ix_channel_listeners_channel_id", table_name="channel_listeners")
    op.drop_table("channel_listeners")
