"""A Storage that times every call and counts the ones that fail, around any backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from stb_origin.observability import metrics
from stb_origin.storage.base import (
    Appender,
    Appending,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageFull,
    StorageUnavailable,
)
from stb_origin.storage.stale import Swept

T = TypeVar("T")


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, ObjectNotFound):
        return "not_found"
    if isinstance(exc, InvalidKey):
        return "invalid_key"
    if isinstance(exc, StorageFull):
        return "full"
    if isinstance(exc, StorageUnavailable):
        return "unavailable"
    return "other"


@contextmanager
def _timed(operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        metrics.STORAGE_ERRORS.labels(operation, error_kind(exc)).inc()
        raise
    finally:
        metrics.STORAGE_OPERATION_DURATION.labels(operation).observe(
            time.perf_counter() - started)


class InstrumentedStorage:
    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"InstrumentedStorage({self.inner!r})"

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        with _timed(operation):
            return call()

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self._call("put_file", lambda: self.inner.put_file(key, path, content_type))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put_bytes", lambda: self.inner.put_bytes(key, data, content_type))

    def stat(self, key: str) -> ObjectInfo:
        return self._call("stat", lambda: self.inner.stat(key))

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        return _first_item_timed("read_chunks",
                                 lambda: self.inner.read_chunks(key, start, end, chunk_size))

    def get_bytes(self, key: str) -> bytes:
        return self._call("get_bytes", lambda: self.inner.get_bytes(key))

    def download(self, key: str, path: Path) -> None:
        self._call("download", lambda: self.inner.download(key, path))

    def list_keys(self, prefix: str) -> Iterator[str]:
        return _first_item_timed("list_keys", lambda: self.inner.list_keys(prefix))

    def delete_prefix(self, prefix: str) -> int:
        return self._call("delete_prefix", lambda: self.inner.delete_prefix(prefix))

    def delete_keys(self, keys: Iterable[str]) -> int:
        return self._call("delete_keys", lambda: self.inner.delete_keys(keys))

    def check(self) -> None:
        self._call("check", self.inner.check)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def sweep_temporary(self, older_than: datetime, keep: Collection[str] = ()) -> Swept:
        return self._call("sweep_temporary",
                          lambda: self.inner.sweep_temporary(older_than, keep))

    def begin_append(self, key: str, size: int) -> Appending:
        return self._call("begin_append",
                          lambda: self.inner.begin_append(key, size))

    def open_append(self, appending: Appending) -> Appender:
        return self._call("open_append", lambda: self.inner.open_append(appending))

    def finish_append(self, appending: Appending) -> None:
        self._call("finish_append", lambda: self.inner.finish_append(appending))

    def abort_append(self, appending: Appending) -> None:
        self._call("abort_append", lambda: self.inner.abort_append(appending))


def _first_item_timed(operation: str, open_items: Callable[[], Iterator[T]]) -> Iterator[T]:
    """Iterate lazily, as the backends do; the latency recorded is the time to
    the first item, the wait a reader sees before it can start answering."""
    with _timed(operation):
        items = open_items()
        try:
            first = next(items)
        except StopIteration:
            return
        except BaseException:
            _close(items)
            raise
    try:
        yield first
        yield from items
    except Exception as exc:
        metrics.STORAGE_ERRORS.labels(operation, error_kind(exc)).inc()
        raise
    finally:
        _close(items)


def _close(items: Iterator[object]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()
