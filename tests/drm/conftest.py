"""An asset with a key and a box entitled to it: the start of most key-delivery tests."""

from __future__ import annotations

import pytest

from stb_origin.drm.keys import ContentKey
from stb_origin.services import Services
from tests.drm.support import Box, entitle, household, new_asset


@pytest.fixture
def film(services: Services) -> tuple[str, ContentKey]:
    return new_asset(services)


@pytest.fixture
def box(services: Services, film: tuple[str, ContentKey]) -> Box:
    """A box whose account is entitled to the film."""
    entitled = household(services)
    entitle(services, entitled.account_id, film[0])
    return entitled
