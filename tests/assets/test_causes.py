"""failure_cause names what an operator must fix, wherever it sits in the chain."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from minio import Minio
from sqlalchemy.exc import OperationalError

from stb_origin.assets.causes import failure_cause
from stb_origin.storage import LocalStorage, S3Storage, StorageFull, StorageUnavailable
from stb_origin.storage.s3 import make_http_client
from tests.support.tmpfs import mounted_tmpfs


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_an_os_error_for_a_full_disk_is_disk_full(number: int) -> None:
    code, message = failure_cause(OSError(number, os.strerror(number)))
    assert code == "disk_full"
    assert os.strerror(number) in message and "disk space" in message


def test_a_full_disk_under_another_error_is_disk_full() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("publishing failed") from exc
    except RuntimeError as wrapped:
        assert failure_cause(wrapped)[0] == "disk_full"


def test_a_real_full_storage_folder_is_disk_full(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        storage = LocalStorage(disk)
        with pytest.raises(StorageFull) as raised:
            storage.put_bytes("sources/a/source.mp4", b"\0" * 2 * 1024 * 1024, "video/mp4")
        assert failure_cause(raised.value)[0] == "disk_full"
        assert list(disk.rglob("*")) == [disk / "sources", disk / "sources" / "a"]


def test_sqlite_database_or_disk_is_full_through_sqlalchemy_is_disk_full() -> None:
    # A page limit makes SQLite answer exactly as it does on a full disk.
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as connection, pytest.raises(OperationalError) as raised:
        connection.exec_driver_sql("PRAGMA max_page_count = 2")
        connection.exec_driver_sql("CREATE TABLE t (b BLOB)")
        connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
    assert "database or disk is full" in str(raised.value)
    assert failure_cause(raised.value)[0] == "disk_full"


def test_postgresql_disk_full_is_disk_full() -> None:
    assert failure_cause(psycopg.errors.DiskFull("could not extend file"))[0] == "disk_full"


def test_unreachable_storage_is_storage_unavailable() -> None:
    # Nothing listens on the discard port: every call is refused.
    client = Minio("127.0.0.1:9", secure=False, http_client=make_http_client())
    storage = S3Storage(client, "bucket", endpoint="127.0.0.1:9")
    with pytest.raises(StorageUnavailable) as raised:
        storage.stat("sources/a/source.mp4")
    code, message = failure_cause(raised.value)
    assert code == "storage_unavailable"
    assert "unreachable" in message


def test_anything_else_is_an_internal_error_named_by_its_type() -> None:
    code, message = failure_cause(ValueError("odd"))
    assert code == "internal_error" and "ValueError" in message
    connection_refused = OSError(errno.ECONNREFUSED, "Connection refused")
    assert failure_cause(connection_refused)[0] == "internal_error"
