"""ingest.resumable and its lease, on both database engines: a writer whose lease
lapsed writes and records nothing more, a finish that failed is done by the next
look (HEAD or the sweeper), and a master over 2 GiB is an asset like any other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stb_origin.app.sweeper import sweep_once
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id, utcnow
from stb_origin.ingest import resumable
from stb_origin.ingest import tus_records as records
from stb_origin.ingest.service import accept_stored_source
from stb_origin.ingest.tus import Metadata
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage import StorageUnavailable
from tests.conftest import ENGINES, on_engine
from tests.support.tus import Tus, master_bytes


@pytest.fixture(params=ENGINES)
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_engine(request, settings)


def _upload(services: Services, length: int = 10_000) -> records.TusUpload:
    return resumable.create(services, "editor-1", length, Metadata(filename="a.mp4"), "")


def test_a_lapsed_lease_is_taken_over_and_the_old_writer_is_fenced_off(
        services: Services) -> None:
    upload = _upload(services)
    now = utcnow()
    first = records.take(services.db, upload.id, now, resumable.LEASE_S)
    with pytest.raises(records.Locked):
        records.take(services.db, upload.id, now, resumable.LEASE_S)
    writing = resumable.Writing(services, upload, first)
    writing.write(master_bytes(1000))
    # The first writer's lease ran out (it hung): another request takes the upload.
    later = now + timedelta(seconds=resumable.LEASE_S + 1)
    second = records.take(services.db, upload.id, later, resumable.LEASE_S)
    with pytest.raises(records.LeaseLost):
        writing.close()  # its bytes are not recorded
    with pytest.raises(records.LeaseLost):
        records.renew(services.db, first, later, resumable.LEASE_S)
    with services.db.session() as session:
        row = records.get(session, upload.id)
        assert row is not None and row.offset == 0 and row.writer == second.token


def test_a_writer_that_could_not_renew_stops_by_itself(services: Services) -> None:
    upload = _upload(services)
    lease = records.take(services.db, upload.id, utcnow(), resumable.LEASE_S)
    writing = resumable.Writing(services, upload, lease)
    writing.valid_until = 0.0  # renewals failed for LEASE_S - RENEW_EVERY_S
    with pytest.raises(records.LeaseLost):
        writing.write(master_bytes(1000))
    assert writing.close(keep=False).size == 0


def test_an_asset_of_over_2_gib_is_recorded(services: Services) -> None:
    asset_id = new_id()
    size = 3 * 1024**3 + 7
    accept_stored_source(services, asset_id, f"sources/{asset_id}/source.mp4", "big", size)
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.source_size == size


def test_a_finish_storage_refused_is_done_by_the_next_head(api: str, services: Services,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    tus = Tus(api, services.signer.issue(["assets:write"]))
    data = master_bytes(5000)
    url = tus.new(len(data))
    real = services.storage.finish_append

    def unavailable(appending: object) -> None:
        raise StorageUnavailable("S3 endpoint unreachable")

    monkeypatch.setattr(services.storage, "finish_append", unavailable)
    refused = tus.patch(url, 0, data)
    assert refused.status_code == 503
    assert tus.head(url).status_code == 503  # HEAD tries too, and says storage is down
    monkeypatch.setattr(services.storage, "finish_append", real)
    head = tus.head(url)
    assert head.headers["upload-offset"] == str(len(data)) and "stb-asset" in head.headers
    with services.db.session() as session:
        assert session.query(Asset).count() == 1


def test_the_sweeper_finishes_an_upload_whose_finish_died(api: str, services: Services,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    tus = Tus(api, services.signer.issue(["assets:write"]))
    data = master_bytes(5000)
    url = tus.new(len(data))

    def unavailable(appending: object) -> None:
        raise StorageUnavailable("S3 endpoint unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(services.storage, "finish_append", unavailable)
        assert tus.patch(url, 0, data).status_code == 503
    sweep_once(services, datetime.now(UTC))
    with services.db.session() as session:
        [asset] = session.query(Asset).all()
    assert services.storage.get_bytes(asset.source_key) == data
    assert tus.head(url).headers["stb-asset"] == asset.id
    sweep_once(services, datetime.now(UTC))  # nothing more to do
    with services.db.session() as session:
        assert session.query(Asset).count() == 1
