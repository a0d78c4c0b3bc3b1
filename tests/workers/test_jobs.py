"""A job that fails for good leaves its asset failed with a cause an operator can act on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import SimpleWorker

from stb_origin.assets.records import Asset
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.workers import jobs
from tests.conftest import require_tools
from tests.support.media import make_clip
from tests.support.tmpfs import mounted_tmpfs


@pytest.fixture
def full_work_dir(tmp_path: Path, settings: Settings) -> Iterator[Services]:
    """Storage and database on the roomy disk, the worker's work files on an 8 MB one."""
    with mounted_tmpfs(tmp_path / "small-disk", "8m") as disk:
        small = settings.with_(data_dir=disk, job_retries=0,
                               database_url=settings.resolved_database_url,
                               storage_url=settings.resolved_storage_url)
        services = build_services(small)
        jobs.use_settings(small)
        try:
            yield services
        finally:
            jobs.use_settings(None)
            services.close()


def test_a_full_disk_fails_the_asset_with_disk_full(tmp_path: Path,
                                                    full_work_dir: Services) -> None:
    require_tools("ffmpeg")
    services = full_work_dir
    source = make_clip(tmp_path / "clip.mp4", seconds=1, size="320x180")
    with open(source, "ab") as padded:  # too big to download into the work dir
        padded.write(b"\0" * 10 * 1024 * 1024)
    asset_id = accept_source(services, source, ".mp4", "big", source.stat().st_size)["id"]

    SimpleWorker([services.queue], connection=services.redis).work(burst=True)

    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        assert (asset.status, asset.error_code) == ("failed", "disk_full")
        assert "No space left on device" in (asset.error_message or "")
