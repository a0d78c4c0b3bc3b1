"""The account services run against both real engines: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stb_origin.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stb.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.create_schema()
    yield database
    database.dispose()
