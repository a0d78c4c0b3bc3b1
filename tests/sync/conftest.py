"""Every sync test on both engines: the change log's order is the engines' business."""

from __future__ import annotations

import pytest

from stb_origin.settings import Settings
from tests.conftest import ENGINES, on_engine


@pytest.fixture(params=ENGINES)
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_engine(request, settings)
