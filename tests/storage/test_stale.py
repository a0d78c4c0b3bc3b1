"""Leftovers of dead writers go once nobody has written to them for long enough;
what live writers hold, and the objects themselves, stay."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stb_origin.storage import LocalStorage, S3Storage, Swept, open_storage
from stb_origin.storage.base import TMP_PREFIX
from stb_origin.storage.stale import remove_stale
from tests.storage.conftest import s3_settings
from tests.support.s3server import MotoServer

HOUR = 3600


def _aged(path: Path, data: bytes, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_remove_stale_takes_only_regular_files_older_than_the_cutoff(tmp_path: Path) -> None:
    old = _aged(tmp_path / "old", b"x" * 10, 2 * HOUR)
    fresh = _aged(tmp_path / "fresh", b"y", 0)
    folder = tmp_path / "folder"
    folder.mkdir()
    os.utime(folder, (0, 0))
    link = tmp_path / "link"
    link.symlink_to(fresh)
    os.utime(link, (0, 0), follow_symlinks=False)
    gone = tmp_path / "gone"  # listed, then removed by its writer before the sweep
    swept = remove_stale([old, fresh, folder, link, gone], time.time() - HOUR)
    assert swept == Swept(1, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "fresh", "link"]


def test_fs_sweep_removes_stale_temporary_files_only(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("sources/a/source.mp4", b"master", "video/mp4")
    os.utime(storage.root / "sources/a/source.mp4", (0, 0))  # old objects are not leftovers
    _aged(storage.root / "sources/a" / f"{TMP_PREFIX}killed", b"z" * 1000, 2 * HOUR)
    _aged(storage.root / "hls/b/v1" / f"{TMP_PREFIX}writing", b"w", 0)

    swept = storage.sweep_temporary(datetime.now(UTC) - timedelta(hours=1))

    assert swept == Swept(1, 1000)
    assert not (storage.root / "sources/a" / f"{TMP_PREFIX}killed").exists()
    assert (storage.root / "hls/b/v1" / f"{TMP_PREFIX}writing").exists()
    assert list(storage.list_keys("")) == ["sources/a/source.mp4"]


def _start_multipart(storage: S3Storage, name: str, part: bytes) -> str:
    upload_id = storage.client._create_multipart_upload(storage.bucket, name, {})
    storage.client._upload_part(storage.bucket, name, part, None, upload_id, 1)
    return upload_id


def _open_uploads(storage: S3Storage) -> list[str]:
    listing = storage.client._list_multipart_uploads(storage.bucket)
    return sorted(upload.object_name for upload in listing.uploads)


def test_s3_sweep_aborts_stale_multipart_uploads_under_its_prefix(
        moto_server: MotoServer) -> None:
    storage = open_storage(s3_settings(moto_server, prefix="pfx"))
    assert isinstance(storage, S3Storage)
    _start_multipart(storage, "pfx/sources/a/source.mp4", b"p" * 4096)
    _start_multipart(storage, "elsewhere/x", b"q")  # another deployment's, in the same bucket
    now = datetime.now(UTC)

    # Just sent a part: in progress, whatever its age says.
    assert storage.sweep_temporary(now - timedelta(hours=1)) == Swept()
    assert _open_uploads(storage) == ["elsewhere/x", "pfx/sources/a/source.mp4"]

    # An hour on, with no part since: its writer is dead.
    assert storage.sweep_temporary(now + timedelta(hours=1)) == Swept(1, 4096)
    assert _open_uploads(storage) == ["elsewhere/x"]
    assert storage.sweep_temporary(now + timedelta(hours=1)) == Swept()
