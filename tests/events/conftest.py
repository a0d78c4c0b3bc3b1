"""Households, content-team tokens and the real app with WebSockets, for the event tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from stb_origin.services import Services
from tests.drm.support import Box, household
from tests.support.http import run_server


@pytest.fixture
def box(services: Services) -> Box:
    return household(services)


@pytest.fixture
def editor(services: Services) -> str:
    """A content-team token: asset progress and channels."""
    return services.signer.issue(["assets:read"], subject="operator")


@pytest.fixture
def live_api(app: Starlette) -> Iterator[str]:
    """The real app under uvicorn with WebSockets (run_server's default has none)."""
    with run_server(app, ws="websockets-sansio") as base_url:
        yield base_url
