from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from stb_origin.settings import Settings
from stb_origin.storage import Storage, open_storage
from tests.support.s3server import MotoServer


def s3_settings(server: MotoServer, prefix: str = "pfx") -> Settings:
    # A fresh bucket per test keeps tests apart on one shared server.
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    return Settings(storage_url=f"s3://{bucket}/{prefix}", **server.settings_fields())


@pytest.fixture(params=["fs", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "fs":
        return open_storage(Settings(storage_url=(tmp_path / "store").as_uri()))
    return open_storage(s3_settings(request.getfixturevalue("moto_server")))
