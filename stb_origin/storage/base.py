"""The storage interface: a handful of methods over keys like ``hls/{id}/...``.

Keys are relative, '/'-separated and never contain '..'; ``check_key`` enforces
that at every entry point so no backend can be walked out of its root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The backend could not be reached or answered with a server error."""


class InvalidKey(StorageError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # quoted strong ETag, ready for an HTTP header
    last_modified: datetime  # timezone-aware UTC
    content_type: str


class Storage(Protocol):
    def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """Bytes [start, end] inclusive (end None: to the end), streamed."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, path: Path) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def check(self) -> None:
        """Raise StorageUnavailable when the backend cannot serve requests."""
        ...


def check_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey(f"invalid storage key: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key
