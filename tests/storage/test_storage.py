"""One suite for every storage backend (the ``storage`` fixture runs it on fs and s3)."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stb_origin.settings import Settings, SettingsError
from stb_origin.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageUnavailable,
    open_storage,
)
from tests.storage.conftest import s3_settings
from tests.support.s3server import SECRET_KEY, MotoServer, start_moto

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable
M3U8 = "application/vnd.apple.mpegurl"


def test_put_bytes_then_stat(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    storage.put_bytes("hls/a/master.m3u8", b"#EXTM3U\n", M3U8)

    info = storage.stat("hls/a/master.m3u8")

    assert info.key == "hls/a/master.m3u8"
    assert info.size == 8
    assert info.content_type == M3U8
    assert info.etag.startswith('"') and info.etag.endswith('"') and len(info.etag) > 2
    assert info.last_modified.tzinfo is not None
    assert info.last_modified.utcoffset() == timedelta(0)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=2)
    assert storage.get_bytes("hls/a/master.m3u8") == b"#EXTM3U\n"


def test_stored_content_type_is_kept(storage: Storage) -> None:
    storage.put_bytes("x/data.bin", b"1", "application/x-custom")
    assert storage.stat("x/data.bin").content_type == "application/x-custom"


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (0, None), (3, 6), (500, 900), (1023, 1023), (1023, None), (1000, 5000), (5, 4)],
    ids=["first-byte", "whole", "small-middle", "middle", "last-byte", "last-open",
         "past-end", "empty"],
)
def test_read_chunks_ranges(storage: Storage, start: int, end: int | None) -> None:
    storage.put_bytes("v/seg.m4s", DATA, "video/iso.segment")

    got = b"".join(storage.read_chunks("v/seg.m4s", start, end, chunk_size=100))

    assert got == DATA[start:None if end is None else end + 1]


def test_read_chunks_from_past_the_end_is_empty(storage: Storage) -> None:
    storage.put_bytes("v/seg.m4s", DATA, "video/iso.segment")
    assert list(storage.read_chunks("v/seg.m4s", 2000)) == []


def test_read_chunks_respects_chunk_size(storage: Storage) -> None:
    storage.put_bytes("v/seg.m4s", DATA, "video/iso.segment")
    chunks = list(storage.read_chunks("v/seg.m4s", chunk_size=300))
    assert b"".join(chunks) == DATA
    assert max(len(c) for c in chunks) <= 300
    assert len(chunks) >= 4


def test_empty_object(storage: Storage) -> None:
    storage.put_bytes("v/empty.vtt", b"", "text/vtt")
    assert storage.stat("v/empty.vtt").size == 0
    assert b"".join(storage.read_chunks("v/empty.vtt")) == b""


def test_missing_key_raises_not_found(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        storage.stat("hls/nope/master.m3u8")
    with pytest.raises(ObjectNotFound):
        next(storage.read_chunks("hls/nope/master.m3u8"))
    with pytest.raises(ObjectNotFound):
        storage.get_bytes("hls/nope/master.m3u8")
    with pytest.raises(ObjectNotFound):
        storage.download("hls/nope/master.m3u8", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_is_not_an_object(storage: Storage) -> None:
    storage.put_bytes("hls/a/v1/seg.m4s", b"x", "video/iso.segment")
    with pytest.raises(ObjectNotFound):
        storage.stat("hls/a/v1")


def test_overwrite_replaces_content_and_etag(storage: Storage) -> None:
    storage.put_bytes("hls/a/master.m3u8", b"one", M3U8)
    first = storage.stat("hls/a/master.m3u8")
    storage.put_bytes("hls/a/master.m3u8", b"second", M3U8)
    second = storage.stat("hls/a/master.m3u8")

    assert storage.get_bytes("hls/a/master.m3u8") == b"second"
    assert second.size == 6
    assert second.etag != first.etag


def test_list_keys_sorted_with_string_prefix(storage: Storage) -> None:
    keys = ["hls/abc/v1/b.m4s", "hls/abc/master.m3u8", "hls/abc/v1/a.m4s",
            "hls/abcd/master.m3u8", "sources/abc/src.mp4"]
    for key in keys:
        storage.put_bytes(key, b"x", "application/octet-stream")

    assert list(storage.list_keys("hls/abc/")) == [
        "hls/abc/master.m3u8", "hls/abc/v1/a.m4s", "hls/abc/v1/b.m4s"]
    assert list(storage.list_keys("hls/abc")) == [
        "hls/abc/master.m3u8", "hls/abc/v1/a.m4s", "hls/abc/v1/b.m4s", "hls/abcd/master.m3u8"]
    assert list(storage.list_keys("")) == sorted(keys)
    assert list(storage.list_keys("nothing/")) == []


def test_delete_prefix(storage: Storage) -> None:
    for key in ["hls/abc/master.m3u8", "hls/abc/v1/a.m4s", "hls/abc/v1/b.m4s",
                "hls/abcd/master.m3u8"]:
        storage.put_bytes(key, b"x", "application/octet-stream")

    assert storage.delete_prefix("hls/abc/master.m3u8") == 1
    assert storage.delete_prefix("hls/abc/") == 2
    assert storage.delete_prefix("hls/abc/") == 0

    assert list(storage.list_keys("hls/")) == ["hls/abcd/master.m3u8"]
    with pytest.raises(ObjectNotFound):
        storage.stat("hls/abc/v1/a.m4s")
    if isinstance(storage, LocalStorage):  # empty folders go too
        assert not (storage.root / "hls" / "abc").exists()
        assert (storage.root / "hls" / "abcd").is_dir()


def test_delete_prefix_refuses_everything(storage: Storage) -> None:
    storage.put_bytes("a/b", b"x", "application/octet-stream")
    with pytest.raises(InvalidKey):
        storage.delete_prefix("")
    assert storage.get_bytes("a/b") == b"x"


def test_put_file_copies_and_download(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "init.mp4"
    source.write_bytes(DATA)

    storage.put_file("hls/a/v1/init.mp4", source, "video/mp4")
    storage.download("hls/a/v1/init.mp4", tmp_path / "back.mp4")

    assert source.read_bytes() == DATA  # the caller keeps its file
    assert (tmp_path / "back.mp4").read_bytes() == DATA
    assert storage.stat("hls/a/v1/init.mp4").content_type == "video/mp4"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_download_never_changes_when_the_key_is_written_again(storage: Storage,
                                                                tmp_path: Path) -> None:
    storage.put_bytes("masters/a/source.mp4", DATA, "video/mp4")
    storage.download("masters/a/source.mp4", tmp_path / "source.mp4")

    storage.put_bytes("masters/a/source.mp4", b"replaced", "video/mp4")
    storage.delete_keys(["masters/a/source.mp4"])

    assert (tmp_path / "source.mp4").read_bytes() == DATA


def test_a_folder_download_shares_the_bytes_instead_of_copying(tmp_path: Path) -> None:
    # A master is gigabytes: a worker on the same file system has it at once.
    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("masters/a/source.mp4", DATA, "video/mp4")
    storage.download("masters/a/source.mp4", tmp_path / "source.mp4")

    stored = os.stat(tmp_path / "root" / "masters" / "a" / "source.mp4")
    assert os.stat(tmp_path / "source.mp4").st_ino == stored.st_ino
    assert (tmp_path / "source.mp4").read_bytes() == DATA


def test_big_file_is_streamed(storage: Storage, tmp_path: Path) -> None:
    size = 40 * 1024 * 1024 + 123  # more than two 16 MiB parts on S3
    source = tmp_path / "big.ts"
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with source.open("wb") as file:
        for _ in range(40):
            file.write(block)
            digest.update(block)
        file.write(block[:123])
        digest.update(block[:123])

    storage.put_file("sources/big.ts", source, "video/mp2t")
    assert storage.stat("sources/big.ts").size == size

    chunk_size = 512 * 1024
    seen = hashlib.sha256()
    total = largest = 0
    tracemalloc.start()
    try:
        for chunk in storage.read_chunks("sources/big.ts", chunk_size=chunk_size):
            seen.update(chunk)
            total += len(chunk)
            largest = max(largest, len(chunk))
            del chunk
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total == size
    assert seen.hexdigest() == digest.hexdigest()
    assert largest <= chunk_size
    assert peak < 8 * 1024 * 1024, f"reading held {peak} bytes at once"


BAD_KEYS = ["", "..", "../x", "a/../b", "a/..", "./a", "a/./b", "/abs", "//etc/passwd",
            "a//b", "a/", "a\\b", "..\\x", "a\x00b", "a\nb", "x" * 1100]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put_bytes(key, b"x", "application/octet-stream")
    with pytest.raises(InvalidKey):
        storage.stat(key)
    with pytest.raises(InvalidKey):
        next(storage.read_chunks(key))
    assert list(storage.list_keys("")) == []


@pytest.mark.parametrize("prefix", ["../", "/abs", "a/../", "a//"])
def test_invalid_prefixes_rejected(storage: Storage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(storage.list_keys(prefix))
    with pytest.raises(InvalidKey):
        storage.delete_prefix(prefix)


def test_percent_escapes_are_plain_names(storage: Storage) -> None:
    storage.put_bytes("hls/%2e%2e/x", b"literal", "application/octet-stream")
    assert storage.get_bytes("hls/%2e%2e/x") == b"literal"
    assert list(storage.list_keys("hls/")) == ["hls/%2e%2e/x"]


def test_check_passes(storage: Storage) -> None:
    storage.check()


# -- local folder only -------------------------------------------------------------


def test_symlink_out_of_the_root_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    storage = LocalStorage(tmp_path / "root")
    (storage.root / "hls").mkdir()
    (storage.root / "hls" / "evil").symlink_to(outside)
    (storage.root / "hls" / "link.m3u8").symlink_to(outside / "secret")

    for key in ["hls/evil/secret", "hls/link.m3u8"]:
        with pytest.raises(InvalidKey):
            storage.stat(key)
        with pytest.raises(InvalidKey):
            storage.get_bytes(key)
    with pytest.raises(InvalidKey):
        storage.put_bytes("hls/evil/planted", b"x", "text/plain")
    with pytest.raises(InvalidKey):
        list(storage.list_keys("hls/evil/"))
    assert list(storage.list_keys("")) == []
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_symlink_inside_the_root_is_followed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("a/real.m3u8", b"#EXTM3U", M3U8)
    (storage.root / "alias").symlink_to(storage.root / "a")
    assert storage.get_bytes("alias/real.m3u8") == b"#EXTM3U"


def test_temporary_names_are_not_keys(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(InvalidKey):
        storage.put_bytes("a/.stb-tmp-x", b"x", "text/plain")
    (storage.root / "a").mkdir()
    (storage.root / "a" / ".stb-tmp-abandoned").write_bytes(b"half")
    assert list(storage.list_keys("")) == []


def test_fs_content_type_falls_back_to_extension(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    (storage.root / "hls").mkdir()
    for name in ["a.m3u8", "b.m4s", "c.ts", "d.mp4", "e.unknownext"]:
        (storage.root / "hls" / name).write_bytes(b"x")  # no stored attribute
    types = {name: storage.stat(f"hls/{name}").content_type
             for name in ["a.m3u8", "b.m4s", "c.ts", "d.mp4", "e.unknownext"]}
    assert types == {"a.m3u8": M3U8, "b.m4s": "video/iso.segment", "c.ts": "video/mp2t",
                     "d.mp4": "video/mp4", "e.unknownext": "application/octet-stream"}


def test_fs_write_is_atomic_and_leaves_no_temporaries(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("a/b.m3u8", b"1", M3U8)
    storage.put_bytes("a/b.m3u8", b"22", M3U8)
    assert os.listdir(storage.root / "a") == ["b.m3u8"]
    assert (storage.root / "a" / "b.m3u8").stat().st_mode & 0o777 == 0o644


def test_fs_put_into_an_object_path_fails_cleanly(tmp_path: Path) -> None:
    from stb_origin.storage import StorageError

    storage = LocalStorage(tmp_path / "root")
    storage.put_bytes("a/b", b"1", "text/plain")
    with pytest.raises(StorageError):
        storage.put_bytes("a/b/c", b"2", "text/plain")


# -- opening by URL ----------------------------------------------------------------


def test_open_storage_file_url_creates_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store dir"
    storage = open_storage(Settings(storage_url=root.as_uri()))
    assert isinstance(storage, LocalStorage)
    assert root.is_dir()


def test_open_storage_default_is_under_data_dir(tmp_path: Path) -> None:
    storage = open_storage(Settings(data_dir=tmp_path / "data"))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "data" / "storage").resolve()


@pytest.mark.parametrize("url", ["ftp://host/x", "file://otherhost/x", "s3:///nobucket"])
def test_open_storage_rejects_bad_urls(url: str) -> None:
    with pytest.raises(SettingsError):
        open_storage(Settings(storage_url=url))


def test_open_storage_s3_creates_bucket_and_hides_secret(moto_server: MotoServer) -> None:
    settings = s3_settings(moto_server, prefix="")
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.check()
    assert storage.prefix == ""
    open_storage(settings)  # second open: bucket already there
    assert SECRET_KEY not in repr(storage)
    assert SECRET_KEY not in repr(settings)


def test_s3_server_stopped_is_unavailable_quickly(tmp_path: Path) -> None:
    server = start_moto()
    try:
        storage = open_storage(s3_settings(server))
        storage.put_bytes("hls/a/master.m3u8", b"#EXTM3U", M3U8)
    finally:
        server.stop()

    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        storage.stat("hls/a/master.m3u8")
    with pytest.raises(StorageUnavailable):
        next(storage.read_chunks("hls/a/master.m3u8"))
    with pytest.raises(StorageUnavailable):
        list(storage.list_keys("hls/"))
    with pytest.raises(StorageUnavailable):
        storage.put_bytes("hls/a/x", b"x", M3U8)
    with pytest.raises(StorageUnavailable):
        storage.check()
    assert time.monotonic() - started < 10
    assert SECRET_KEY not in str(caught.value)
