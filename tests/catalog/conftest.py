"""Titles, ready assets and tokens for the catalog tests; the domain tests run on
both real engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stb_origin.assets.records import Asset, Status
from stb_origin.db import Database
from stb_origin.db.types import new_id
from stb_origin.services import Services

# A ladder as the packager lists it: H.264 up to 1080p, and one HEVC PQ rung.
HD = [{"type": "video", "name": "720p", "width": 1280, "height": 720,
       "codecs": "avc1.64001f,mp4a.40.2", "bandwidth": 3_000_000,
       "average_bandwidth": 2_500_000, "segment_count": 3},
      {"type": "video", "name": "1080p", "width": 1920, "height": 1080,
       "codecs": "avc1.640028,mp4a.40.2", "bandwidth": 6_000_000,
       "average_bandwidth": 5_000_000, "segment_count": 3}]
HEVC_ONLY = [{"type": "video", "name": "2160p", "width": 3840, "height": 2160,
              "codecs": "hvc1.2.4.L153.90,mp4a.40.2", "video_range": "PQ",
              "bandwidth": 16_000_000, "average_bandwidth": 12_000_000, "segment_count": 3}]


@pytest.fixture
def engines(either_db: Database) -> Database:
    return either_db


def add_asset(db: Database, status: Status = Status.READY,
              renditions: list[dict[str, Any]] | None = None) -> str:
    asset_id = new_id()
    with db.session() as session:
        session.add(Asset(id=asset_id, title="master", status=status.value,
                          source_key=f"sources/{asset_id}/source.mp4",
                          renditions=HD if renditions is None else renditions))
    return asset_id


@pytest.fixture
def editor(services: Services) -> str:
    """The operator's token with the content team's scopes."""
    return services.signer.issue(["assets:read", "assets:write"])


def call(api: str, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, api + path, headers=headers, timeout=30, **kwargs)
