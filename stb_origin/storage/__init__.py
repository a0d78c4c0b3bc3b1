"""Object storage: one protocol, a local-folder and an S3 backend, picked by URL scheme."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from stb_origin.settings import Settings, SettingsError
from stb_origin.storage.base import (
    Appender,
    Appending,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageFull,
    StorageUnavailable,
    check_key,
    check_prefix,
    guess_content_type,
)
from stb_origin.storage.fs import LocalStorage
from stb_origin.storage.s3 import S3Storage
from stb_origin.storage.stale import Swept

__all__ = [
    "Appender", "Appending", "BACKENDS", "InvalidKey", "LocalStorage", "ObjectInfo",
    "ObjectNotFound", "S3Storage",
    "Storage", "StorageError", "StorageFull", "StorageUnavailable", "check_key", "check_prefix",
    "Swept", "guess_content_type", "open_storage",
]


class Backend(Protocol):
    def from_url(self, url: str, settings: Settings) -> Storage: ...


BACKENDS: dict[str, Backend] = {
    "file": LocalStorage,
    "s3": S3Storage,
}


def open_storage(settings: Settings) -> Storage:
    url = settings.resolved_storage_url
    scheme = urlsplit(url).scheme
    backend = BACKENDS.get(scheme)
    if backend is None:
        raise SettingsError(f"STB_STORAGE_URL: unsupported scheme {scheme!r} "
                            f"(use one of: {', '.join(s + '://' for s in BACKENDS)})")
    return backend.from_url(url, settings)
