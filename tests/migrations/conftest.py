"""Both engines, fresh and empty: the migrations must make every schema from nothing."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'stb.db'}"
    return str(request.getfixturevalue("postgres_url"))
