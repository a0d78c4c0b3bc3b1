"""Households with boxes, a ready film in a package they are entitled to, and a
channel; on SQLite, and on PostgreSQL too where a test asks (``BOTH_ENGINES``)."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from stb_origin.accounts import entitlements, packages
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset, Status
from stb_origin.db.types import new_id
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.drm.support import Box, household

BOTH_ENGINES = pytest.mark.parametrize("settings", ["sqlite", "postgresql"], indirect=True)
PACKAGE = "family"
DURATION_S = 100.0


@pytest.fixture
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if getattr(request, "param", "sqlite") == "postgresql":
        settings = replace(settings,
                           database_url=request.getfixturevalue("migrated_postgres_url"))
    return settings


def ready_asset(services: Services, title: str = "film",
                package: str | None = PACKAGE) -> str:
    """A ready asset of DURATION_S seconds with one content key, in ``package``."""
    asset_id = new_id()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title=title, status=Status.READY.value,
                          duration_s=DURATION_S, source_key=f"sources/{asset_id}/s.mp4"))
        session.flush()
        keystore.store(session, asset_id, [generate_key()], services.envelope)
        if package is not None:
            packages.add_asset(session, package, asset_id)
    return asset_id


def new_channel(services: Services, package: str | None = PACKAGE) -> str:
    channel_id = new_id()
    with services.db.session() as session:
        session.add(Channel(id=channel_id, name=f"Channel <{secrets.token_hex(2)}>",
                            sources=["udp://127.0.0.1:5000"], ladder="auto"))
        session.flush()
        if package is not None:
            packages.set_channel_packages(session, channel_id, [package])
    return channel_id


def entitled_household(services: Services) -> Box:
    box = household(services)
    with services.db.session() as session:
        entitlements.grant(session, box.account_id, PACKAGE)
    return box


@pytest.fixture
def family(services: Services) -> str:
    with services.db.session() as session:
        packages.create_package(session, PACKAGE)
    return PACKAGE


@pytest.fixture
def film(services: Services, family: str) -> str:
    return ready_asset(services)


@pytest.fixture
def box(services: Services, family: str) -> Box:
    return entitled_household(services)
