"""The migrations make the schema the models describe, keep the data already there,
and adopt a database that ``create_all`` made before they existed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from stb_origin import migrations
from stb_origin.db import Database
from stb_origin.migrations.tables import metadata
from tests.support.cli import run_cli

# Tables later revisions make: there are none of their rows to keep.
LATER_TABLES = {"asset_tracks", "channels", "live_segments", "package_channels",
                "programmes", "guide_channel_map", "guide_sources", "clips", "changes",
                "activity_assets", "activity_channels",
                "titles", "genres", "title_genres", "title_assets", "artwork",
                "webhooks", "webhook_deliveries", "webhook_attempts",
                "tus_uploads", "channel_listeners"}


def _differences(url: str) -> list[Any]:
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata()))
    finally:
        database.dispose()


def _first_revision() -> str:
    scripts = ScriptDirectory.from_config(migrations._config())
    (base,) = scripts.get_bases()
    return base


def test_upgrade_from_empty_makes_exactly_the_models(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    assert _differences(empty_url) == []
    assert migrations.current(empty_url) == migrations.heads()


def test_upgrade_at_head_changes_nothing(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    migrations.upgrade(empty_url)
    assert _differences(empty_url) == []
    database = Database(empty_url)
    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    database.dispose()
    assert [v for (v,) in versions] == list(migrations.heads())


def _value(table: Table, column: Any, rows: dict[str, dict[str, Any]]) -> Any:
    for key in column.foreign_keys:
        return rows[key.column.table.name][key.column.name]
    kind = column.type
    if isinstance(kind, DateTime):
        return datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    if isinstance(kind, JSON):
        return {"kept": [1, "two"], "name": table.name}
    if isinstance(kind, LargeBinary):
        return secrets.token_bytes(24)
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Float):
        return 12.5
    if isinstance(kind, Integer | BigInteger):
        return 1_700_000_000
    if isinstance(kind, String):
        return ("v" + secrets.token_hex(16))[: kind.length or 33]
    raise AssertionError(f"{table.name}.{column.name}: no sample value for {kind!r}")


def _normal(value: Any) -> Any:
    # SQLite gives back the UTC time it was given, without its offset.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _read_back(connection: Connection, written: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tables = MetaData()
    tables.reflect(connection)
    found: dict[str, Any] = {}
    for name, row in written.items():
        table = tables.tables[name]
        kept = [table.c[column] for column in row if column in table.c]
        found[name] = {column.name: _normal(value) for column, value in
                       zip(kept, connection.execute(select(*kept)).one(), strict=True)}
    return found


def test_upgrade_from_the_first_revision_keeps_a_row_of_every_table(empty_url: str) -> None:
    migrations.upgrade(empty_url, _first_revision())
    database = Database(empty_url)
    written: dict[str, dict[str, Any]] = {}
    with database.engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        for table in tables.sorted_tables:
            if table.name == "alembic_version":
                continue
            written[table.name] = {c.name: _value(table, c, written) for c in table.columns}
            connection.execute(insert(table).values(written[table.name]))
    assert set(written) >= set(metadata().tables) - LATER_TABLES

    migrations.upgrade(empty_url)

    with database.engine.connect() as connection:
        found = _read_back(connection, written)
    database.dispose()
    for name, row in written.items():
        expected = {column: _normal(value) for column, value in row.items()
                    if column in found[name]}
        assert found[name] == expected, name


def test_a_database_create_all_made_is_adopted_with_its_data(empty_url: str) -> None:
    # What a data dir from before migrations holds: the first revision's tables and
    # no alembic_version.
    migrations.upgrade(empty_url, _first_revision())
    database = Database(empty_url)
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(text("INSERT INTO packages (name, title, created_at)"
                                " VALUES ('gold', 'Gold', '2024-01-01 00:00:00+00:00')"))

    migrations.upgrade(empty_url)

    assert migrations.current(empty_url) == migrations.heads()
    assert _differences(empty_url) == []
    with database.engine.connect() as connection:
        titles = connection.execute(text("SELECT title FROM packages")).scalars().all()
    database.dispose()
    assert titles == ["Gold"]


def test_an_upgrade_that_fails_half_way_leaves_the_schema_as_it_was(empty_url: str) -> None:
    # Indexes and tables share one namespace on both engines: this table makes the
    # initial revision fail late, at the index on users, after most tables are made.
    database = Database(empty_url)
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE ix_users_account_id (id INTEGER)"))
    with pytest.raises(DBAPIError, match="already"):
        migrations.upgrade(empty_url)
    with database.engine.connect() as connection:
        names = inspect(connection).get_table_names()
    database.dispose()
    assert names == ["ix_users_account_id"]
    assert migrations.current(empty_url) == ()


def test_a_database_with_only_some_tables_is_refused_untouched(empty_url: str) -> None:
    database = Database(empty_url)
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE assets (id VARCHAR(32) PRIMARY KEY)"))
    database.dispose()
    with pytest.raises(migrations.SchemaError, match="no migration history"):
        migrations.upgrade(empty_url)
    assert migrations.current(empty_url) == ()


def test_a_database_from_a_newer_release_is_refused_with_a_reason(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    database = Database(empty_url)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    database.dispose()
    with pytest.raises(migrations.SchemaError, match="f00d.*newer release"):
        migrations.upgrade(empty_url)
    assert "newer than this release knows" in migrations.describe(empty_url)


def test_db_commands_upgrade_and_report_the_revision(
        empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from stb_origin.settings import Settings

    settings = Settings(database_url=empty_url)
    assert run_cli(settings, "db", "current") == 0
    assert "run `stb-origin db upgrade`" in capsys.readouterr().out
    assert run_cli(settings, "db", "upgrade") == 0
    (head,) = migrations.heads()
    assert capsys.readouterr().out.strip() == f"{head} (head)"
    assert run_cli(settings, "db", "current") == 0
    assert capsys.readouterr().out.strip() == f"{head} (head)"


def test_an_asset_s_tracks_go_with_it(empty_url: str) -> None:
    migrations.upgrade(empty_url)
    database = Database(empty_url)
    asset, track = secrets.token_hex(16), secrets.token_hex(16)
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO assets (id, title, status, progress, source_key, source_size,"
            " run, attempt, created_at, updated_at) VALUES (:id, 't', 'ready', 100, 'k', 1,"
            " 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"id": asset})
        connection.execute(text(
            "INSERT INTO asset_tracks (id, asset_id, kind, language, name, forced, object_key,"
            " size, created_at) VALUES (:id, :asset, 'audio', 'de', 'Deutsch', false, 'k', 1,"
            " CURRENT_TIMESTAMP)"), {"id": track, "asset": asset})
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM assets WHERE id = :id"), {"id": asset})
    with database.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM asset_tracks")).scalar_one()
    database.dispose()
    assert left == 0


def test_channels_that_already_listen_get_their_ports(empty_url: str) -> None:
    # 0013 records the ports of SRT listeners saved before it (the first by id keeps one
    # that two named); callers and other sources bind nothing of theirs.
    migrations.upgrade(empty_url, "0012")
    database = Database(empty_url)
    sources = {"a1": ["udp://0.0.0.0:9000", "srt://0.0.0.0:9000?mode=listener"],
               "b2": ["srt://10.0.0.1:9000?mode=listener&passphrase=xxxxxxxxxx"],
               "c3": ["srt://10.0.0.1:9001?mode=caller", "srt://[::]:9002?mode=listener"]}
    with database.engine.begin() as connection:
        channels = MetaData()
        channels.reflect(connection, only=["channels"])
        table = channels.tables["channels"]
        for channel_id, urls in sources.items():
            row = {c.name: _value(table, c, {}) for c in table.columns}
            connection.execute(insert(table).values({**row, "id": channel_id, "number": None,
                                                     "sources": urls}))

    migrations.upgrade(empty_url)

    with database.engine.connect() as connection:
        found = connection.execute(text("SELECT transport, port, channel_id FROM"
                                        " channel_listeners ORDER BY port")).all()
    database.dispose()
    assert [tuple(row) for row in found] == [("udp", 9000, "a1"), ("udp", 9002, "c3")]
