from __future__ import annotations

import uuid

import pytest

from stb_origin.settings import Settings
from stb_origin.storage import Storage, open_storage
from tests.support.s3server import MotoServer


def s3_settings(server: MotoServer) -> Settings:
    bucket = f"origin-{uuid.uuid4().hex[:16]}"
    return Settings(storage_url=f"s3://{bucket}/media", **server.settings_fields())


# One store per backend for a whole test module: publishing and starting a
# server for every test would dominate the run time. Tests that write use keys
# of their own.
@pytest.fixture(scope="module", params=["fs", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Storage:
    if request.param == "fs":
        return open_storage(Settings(storage_url=tmp_path_factory.mktemp("store").as_uri()))
    return open_storage(s3_settings(request.getfixturevalue("moto_server")))

