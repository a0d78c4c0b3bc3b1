"""Alembic's environment: always online, on the connection ``upgrade`` opened and locked."""

from __future__ import annotations

from alembic import context

from stb_origin.migrations.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through stb_origin.migrations (stb-origin db upgrade),"
                       " which takes the schema lock first")

context.configure(
    connection=connection,
    target_metadata=metadata(),
    # SQLite alters a table by copying it: batch mode writes migrations that way.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
