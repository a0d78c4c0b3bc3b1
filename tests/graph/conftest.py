"""Every GraphQL test on both engines: the batched reads must cost the same on each."""

from __future__ import annotations

import pytest

from stb_origin.settings import Settings
from tests.conftest import ENGINES, on_engine


@pytest.fixture(params=ENGINES)
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_engine(request, settings)
