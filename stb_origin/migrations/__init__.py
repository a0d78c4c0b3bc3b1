"""Schema migrations (Alembic), configured here in code: no ``alembic.ini`` at run time.

Every process that opens the database brings it to head first (``serve``,
``worker``, ``dev`` and the one-shot commands, through ``build_services`` or
``open_database``), rather than leaving that to a release step someone must
remember. The embedded default (SQLite under ``./data``) then needs no set-up, a
laptop, compose and Kubernetes all run the same code, and no ordering machinery
is needed to keep the app from starting on an old schema. The price is that the
app's database role may alter the schema, and that migrations must keep the
previous release working (expand now, contract in a later release), as replicas
of both run side by side during a rollout; a release step would ask the same.

Concurrent starts never race: the upgrade runs under one lock (``lock.py``); on
PostgreSQL a process that finds the schema at head (the common case) takes none.
A database at a revision this release does not know (migrated by a newer one) is
refused with a message, never touched.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

from stb_origin.db import Database
from stb_origin.migrations.lock import schema_lock

HERE = Path(__file__).resolve().parent
# The schema that `create_all` made before there were migrations.
INITIAL_REVISION = "0001"


class _OnlyChanges(logging.Filter):
    """Every process upgrades as it starts: keep Alembic's "Running upgrade ..." lines
    and drop its per-start chatter (the dialect it found; the plugins it set up on
    import are quieted by ``observability.logs.configure``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.getMessage().startswith("Running ")


logging.getLogger("alembic.runtime.migration").addFilter(_OnlyChanges())


class SchemaError(ValueError):
    pass


def upgrade(database_url: str, target: str = "head") -> None:
    """Migrate the database to ``target``, serialised with every other process."""
    engine = _engine(database_url)
    try:
        # The common case, already at head, takes no lock on PostgreSQL. On SQLite
        # even the first connection waits for the lock (a flock, cheap): turning a
        # new file to WAL fails at once, not after the busy time-out, when another
        # process is doing the same.
        if engine.dialect.name == "postgresql" and target == "head":
            with engine.connect() as connection:
                if _at_head(connection):
                    return
        with schema_lock(engine), engine.connect() as connection:
            if target == "head" and _at_head(connection):
                return
            _adopt_unversioned(connection)
            _refuse_unknown(connection)
            connection.commit()
            with connection.begin():
                command.upgrade(_config(connection), target)
            _check_foreign_keys(connection)
    finally:
        engine.dispose()


def revision(database_url: str, message: str) -> Path:
    """For developers: write a new revision into ``versions/`` by autogenerate, from
    the models against the database at ``database_url`` brought to head. Read it and
    tidy it before committing: autogenerate misses renames and data moves."""
    upgrade(database_url)
    engine = _engine(database_url)
    try:
        with engine.connect() as connection, connection.begin():
            script = command.revision(_config(connection), message=message, autogenerate=True)
    finally:
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def open_database(database_url: str) -> Database:
    """The database, upgraded to head: what every process should open."""
    upgrade(database_url)
    return Database(database_url)


def current(database_url: str) -> tuple[str, ...]:
    """The revisions the database is at (empty before the first upgrade)."""
    engine = _engine(database_url)
    try:
        with engine.connect() as connection:
            return _current(connection)
    finally:
        engine.dispose()


def heads() -> tuple[str, ...]:
    return tuple(_scripts().get_heads())


def describe(database_url: str) -> str:
    """One line for ``stb-origin db current``."""
    at, head = current(database_url), heads()
    if not at:
        return f"empty (head is {', '.join(head)}): run `stb-origin db upgrade`"
    if set(at) == set(head):
        return f"{', '.join(at)} (head)"
    unknown = [rev for rev in at if not _known(_scripts(), rev)]
    if unknown:
        return f"{', '.join(at)}: newer than this release knows (its head is {', '.join(head)})"
    return f"{', '.join(at)} (behind head {', '.join(head)}): run `stb-origin db upgrade`"


def _engine(database_url: str) -> Engine:
    if not database_url.startswith("sqlite"):
        return Database(database_url).engine
    path = database_url.removeprefix("sqlite:///")
    if path and path != database_url and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url, poolclass=NullPool, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_for_migrations)
    # Python's sqlite3 runs DDL outside any transaction: begin one ourselves, so that
    # an upgrade that fails half-way leaves the schema as it found it.
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _sqlite_for_migrations(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_conn.isolation_level = None  # the driver's own BEGINs off: see "begin" above
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # SQLite alters a table by copying and dropping it; with foreign keys on, the
    # drop would cascade into the rows that refer to it. Checked after the upgrade.
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _at_head(connection: Connection) -> bool:
    return set(_current(connection)) == set(heads())


def _adopt_unversioned(connection: Connection) -> None:
    """A database made by ``create_all`` before migrations existed is the initial
    revision: record it as such instead of failing on tables that exist."""
    if _current(connection):
        return
    present = set(inspect(connection).get_table_names())
    initial = _scripts().get_revision(INITIAL_REVISION)
    assert initial is not None
    expected = set(initial.module.TABLES)
    if not present & expected:
        return
    if not expected <= present:
        raise SchemaError(
            f"the database has some of stb-origin's tables but not {sorted(expected - present)}"
            " and no migration history: restore it from a backup or start from an empty one")
    command.stamp(_config(connection), INITIAL_REVISION)
    connection.commit()


def _refuse_unknown(connection: Connection) -> None:
    scripts = _scripts()
    unknown = [rev for rev in _current(connection) if not _known(scripts, rev)]
    if unknown:
        raise SchemaError(
            f"the database schema is at revision {', '.join(unknown)}, which this release of"
            f" stb-origin does not know (its newest is {', '.join(scripts.get_heads())}):"
            " a newer release migrated it; run that release")


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:  # alembic: "Can't locate revision"
        return False


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
    connection.rollback()
    if broken:
        raise SchemaError(f"the upgrade left rows whose foreign keys point nowhere: {broken[:5]}")
