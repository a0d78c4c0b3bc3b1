"""The account services run against both real engines: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stb_origin.db import Database
from tests.conftest import copy_migrated


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path,
       migrated_sqlite: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = copy_migrated(migrated_sqlite, tmp_path / "stb.db")
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    database = Database(url)
    yield database
    database.dispose()
