"""Appends (begin_append ... finish_append) on both backends: an object put together
from pieces sent over many requests, which a crash at any point leaves agreeing with
the last Appending its caller recorded."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from stb_origin.storage import Appending, ObjectNotFound, S3Storage, Storage, open_storage
from stb_origin.storage import fs as fs_backend
from stb_origin.storage import s3 as s3_backend
from tests.storage.conftest import s3_settings
from tests.support.s3server import MotoServer

MB = 1024 * 1024
KEY = "sources/a1/source.mp4"


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Checkpoints every MiB in a folder; S3 keeps its real least part size (5 MiB).
    monkeypatch.setattr(fs_backend, "APPEND_CHECKPOINT_BYTES", MB)
    monkeypatch.setattr(s3_backend, "APPEND_PART_SIZE", 5 * MB)


def _append(storage: Storage, appending: Appending, data: bytes, batch: int = MB // 2,
            keep: bool = True) -> tuple[Appending, list[Appending]]:
    writer = storage.open_append(appending)
    checkpoints = []
    for start in range(0, len(data), batch):
        if (checkpoint := writer.write(data[start:start + batch])) is not None:
            checkpoints.append(checkpoint)
    return writer.close(keep), checkpoints


def _visible(storage: Storage) -> list[str]:
    return list(storage.list_keys(""))


def test_an_object_put_together_from_requests_of_any_size(storage: Storage) -> None:
    data = secrets.token_bytes(12 * MB + 17)
    appending = storage.begin_append(KEY, len(data))
    for cut in (100, 3 * MB, 3 * MB + 1, 11 * MB, len(data)):
        appending, _ = _append(storage, appending, data[appending.size:cut])
        assert appending.size == cut
        assert _visible(storage) == []  # nothing at the key, nothing listed, until the end
    storage.finish_append(appending)
    assert storage.get_bytes(KEY) == data
    assert storage.stat(KEY).content_type == "application/octet-stream"
    assert _visible(storage) == [KEY]
    storage.finish_append(appending)  # a retry finds it done
    assert storage.get_bytes(KEY) == data


def test_checkpoints_say_what_is_durable_mid_request(storage: Storage) -> None:
    data = secrets.token_bytes(11 * MB)
    appending = storage.begin_append(KEY, len(data))
    _, checkpoints = _append(storage, appending, data)
    assert checkpoints and all(c.size <= len(data) for c in checkpoints)
    # The process dies after a checkpoint was recorded: the next writer goes on from it.
    resumed = checkpoints[-1]
    final, _ = _append(storage, resumed, data[resumed.size:])
    storage.finish_append(final)
    assert storage.get_bytes(KEY) == data


def test_bytes_written_but_never_recorded_are_overwritten(storage: Storage) -> None:
    data = secrets.token_bytes(7 * MB)
    start = storage.begin_append(KEY, len(data))
    recorded, _ = _append(storage, start, data[:2 * MB])
    # A writer sends garbage, keeps it (its own close) and dies before its caller records it.
    _append(storage, recorded, secrets.token_bytes(4 * MB))
    final, _ = _append(storage, recorded, data[2 * MB:])
    storage.finish_append(final)
    assert storage.get_bytes(KEY) == data


def test_keep_false_forgets_the_request(storage: Storage) -> None:
    data = secrets.token_bytes(3 * MB)
    start = storage.begin_append(KEY, len(data))
    kept, _ = _append(storage, start, data[:MB])
    forgotten, _ = _append(storage, kept, b"\0" * MB, keep=False)
    assert forgotten.size <= kept.size + MB
    final, _ = _append(storage, kept, data[MB:])
    storage.finish_append(final)
    assert storage.get_bytes(KEY) == data


def test_abort_leaves_nothing(storage: Storage) -> None:
    appending = storage.begin_append(KEY, 9 * MB)
    appending, _ = _append(storage, appending, secrets.token_bytes(7 * MB))
    storage.abort_append(appending)
    storage.abort_append(appending)  # twice: nothing to do
    assert _visible(storage) == []
    with pytest.raises(ObjectNotFound):
        storage.stat(KEY)


def test_finishing_what_is_not_there_is_not_found(storage: Storage) -> None:
    appending = storage.begin_append(KEY, 10)
    appending, _ = _append(storage, appending, b"0123456789")
    storage.abort_append(appending)
    with pytest.raises(ObjectNotFound):
        storage.finish_append(appending)


def test_an_append_key_is_checked(storage: Storage) -> None:
    from stb_origin.storage import InvalidKey
    with pytest.raises(InvalidKey):
        storage.begin_append("../outside", 10)


def test_s3_sends_parts_of_at_least_5_mib_but_the_last(moto_server: MotoServer) -> None:
    storage = open_storage(s3_settings(moto_server))
    assert isinstance(storage, S3Storage)
    data = secrets.token_bytes(17 * MB + 5)
    appending = storage.begin_append(KEY, len(data))
    # Requests smaller than a part: the bytes short of one wait in a staging object.
    for cut in (MB, 4 * MB, 6 * MB, 16 * MB, len(data)):
        appending, _ = _append(storage, appending, data[appending.size:cut])
        assert appending.size == cut and appending.parts == cut // (5 * MB)
    name = storage.prefix + KEY
    parts = storage.client._list_parts(storage.bucket, name, appending.upload_id).parts
    assert [p.size for p in parts] == [5 * MB] * 3
    storage.finish_append(appending)
    assert storage.get_bytes(KEY) == data
    listing = storage.client._list_multipart_uploads(storage.bucket)
    assert listing.uploads == []
    everything = [o.object_name for o in storage.client.list_objects(storage.bucket,
                                                                     recursive=True)]
    assert everything == [name]  # the staging object went with the finish


def test_s3_parts_grow_for_objects_that_would_need_too_many(moto_server: MotoServer) -> None:
    storage = open_storage(s3_settings(moto_server))
    appending = storage.begin_append(KEY, 200 * 1024 * MB)
    assert appending.part_size * s3_backend.MAX_PARTS >= 200 * 1024 * MB
    storage.abort_append(appending)


def test_s3_sweep_keeps_the_appends_it_is_told_of(moto_server: MotoServer) -> None:
    storage = open_storage(s3_settings(moto_server))
    assert isinstance(storage, S3Storage)
    live = storage.begin_append(KEY, 6 * MB)
    live, _ = _append(storage, live, secrets.token_bytes(5 * MB))
    dead = storage.begin_append("sources/b2/source.mp4", 6 * MB)
    later = datetime.now(UTC) + timedelta(hours=1)
    swept = storage.sweep_temporary(later, keep={live.upload_id})
    assert swept.count == 1
    uploads = storage.client._list_multipart_uploads(storage.bucket).uploads
    assert [u.upload_id for u in uploads] == [live.upload_id]
    assert dead.upload_id not in {u.upload_id for u in uploads}
