"""The account services run against both real engines: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from stb_origin.db import Database


@pytest.fixture
def db(either_db: Database) -> Database:
    return either_db
