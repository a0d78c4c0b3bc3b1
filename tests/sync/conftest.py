"""Every sync test on both engines: the change log's order is the engines' business."""

from __future__ import annotations

import dataclasses

import pytest

from stb_origin.settings import Settings


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "sqlite":
        return settings
    url: str = request.getfixturevalue("migrated_postgres_url")
    return dataclasses.replace(settings, database_url=url)
