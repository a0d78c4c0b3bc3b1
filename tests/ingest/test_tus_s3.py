"""tus uploads on the S3 backend (a real S3 server, moto): parts of at least 5 MiB
but the last, the bytes short of a part staged between requests, nothing left
behind by a finish, a termination or an expiry."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from stb_origin.app import create_app
from stb_origin.app.sweeper import sweep_once
from stb_origin.assets.records import Asset
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.storage import S3Storage
from tests.support.http import run_server
from tests.support.s3server import MotoServer
from tests.support.tus import Tus, master_bytes

MB = 1024 * 1024


@pytest.fixture
def services(settings: Settings, moto_server: MotoServer) -> Iterator[Services]:
    built = build_services(settings.with_(storage_url=f"s3://tus-{secrets.token_hex(6)}",
                                          **moto_server.settings_fields()))
    yield built
    built.close()


@pytest.fixture
def tus(services: Services) -> Iterator[Tus]:
    app: Starlette = create_app(services)
    with run_server(app) as base_url:
        yield Tus(base_url, services.signer.issue(["assets:write"]))


def _s3(services: Services) -> S3Storage:
    inner = services.storage.inner  # type: ignore[attr-defined]
    assert isinstance(inner, S3Storage)
    return inner


def _in_bucket(services: Services) -> tuple[list[str], list[str]]:
    """(every object, every unfinished multipart upload) in the bucket."""
    s3 = _s3(services)
    objects = [o.object_name for o in s3.client.list_objects(s3.bucket, recursive=True)]
    uploads = [u.object_name for u in s3.client._list_multipart_uploads(s3.bucket).uploads]
    return sorted(objects), uploads


def _sha1(chunk: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(chunk).digest()).decode()


def test_an_upload_goes_up_in_parts_and_leaves_only_its_source(tus: Tus,
                                                               services: Services) -> None:
    data = master_bytes(19 * MB + 3)
    url = tus.new(len(data))
    offset = 0
    for size in (MB + 1, 3 * MB, 9 * MB):  # across part boundaries, and short of them
        assert tus.patch(url, offset, data[offset:offset + size]).status_code == 204
        offset += size
    # A checksum mismatch across a part boundary: the part it sent is not counted.
    bad = tus.patch(url, offset, data[offset:offset + 4 * MB], **{
        "Upload-Checksum": _sha1(b"other bytes")})
    assert bad.status_code == 460
    assert tus.head(url).headers["upload-offset"] == str(offset)
    good = data[offset:offset + 4 * MB]
    assert tus.patch(url, offset, good, **{"Upload-Checksum": _sha1(good)}).status_code == 204
    offset += len(good)
    objects, uploads = _in_bucket(services)
    assert uploads and all(name.startswith(".stb-staging/") for name in objects)
    assert list(services.storage.list_keys("")) == []

    done = tus.patch(url, offset, data[offset:])
    asset_id = done.headers["stb-asset"]
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        source_key = asset.source_key
    assert hashlib.sha256(services.storage.get_bytes(source_key)).digest() == hashlib.sha256(
        data).digest()
    assert _in_bucket(services) == ([source_key], [])


def test_termination_and_expiry_abort_the_multipart_upload(tus: Tus,
                                                           services: Services) -> None:
    data = master_bytes(7 * MB)
    terminated, expired = tus.new(len(data)), tus.new(len(data))
    for url in (terminated, expired):
        tus.patch(url, 0, data[:6 * MB])
    assert len(_in_bucket(services)[1]) == 2
    assert tus.delete(terminated).status_code == 204
    assert len(_in_bucket(services)[1]) == 1
    sweep_once(services, datetime.now(UTC) + timedelta(days=2))
    assert _in_bucket(services) == ([], [])
    assert tus.head(expired).status_code == 404


def test_the_storage_sweep_leaves_a_quiet_upload_alone(tus: Tus, services: Services) -> None:
    data = master_bytes(6 * MB)
    url = tus.new(len(data))
    tus.patch(url, 0, data[:MB])
    # Two hours without a byte: a dead writer's multipart upload, were it not an upload's.
    sweep_once(services, datetime.now(UTC) + timedelta(hours=2))
    assert len(_in_bucket(services)[1]) == 1
    tus.send(url, data, 4 * MB)
    assert _in_bucket(services)[1] == []
