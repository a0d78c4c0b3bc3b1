"""Pipeline runs: a fencing token and heartbeat per asset, attempts, deferred pruning,
and the version each content key belongs to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Written by autogenerate, then tidied: plain SQL types, and a server default for
every new NOT NULL column so existing rows get a value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch_op:
        batch_op.add_column(sa.Column("run", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), server_default="1",
                                      nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("prune_after", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("content_keys") as batch_op:
        batch_op.add_column(sa.Column("version", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("content_keys") as batch_op:
        batch_op.drop_column("version")

    with op.batch_alter_table("assets") as batch_op:
        batch_op.drop_column("prune_after")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempt")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("run")
