"""The storage interface: a handful of methods over keys like ``hls/{id}/...``.

Keys are relative, '/'-separated and never contain '..'; ``check_key`` enforces
that at every entry point so no backend can be walked out of its root.
Prefixes (``list_keys``, ``delete_prefix``) are plain string prefixes, as in S3:
``hls/abc`` also matches ``hls/abcd/x``, so pass a trailing '/' to mean a folder.
"""

from __future__ import annotations

import mimetypes
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from stb_origin.storage.stale import Swept


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


class StorageUnavailable(StorageError):
    """The backend could not be reached or answered with a server error."""


class StorageFull(StorageUnavailable):
    """The backend has no space left: writes fail until an operator frees some."""


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

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete these objects (missing ones are not an error); how many were there."""
        ...

    def check(self) -> None:
        """Raise StorageUnavailable when the backend cannot serve requests."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object, for a server to send itself (ASGI
        pathsend); None when the backend is not a local folder."""
        ...

    def sweep_temporary(self, older_than: datetime, keep: Collection[str] = ()) -> Swept:
        """Remove what writers that died left behind (temporary files, unfinished
        multipart uploads), if nobody has written to it since ``older_than``;
        never the appends whose ``Appending.upload_id`` is in ``keep``."""
        ...

    # -- resumable writes: an object appended to over many requests ------------------

    def begin_append(self, key: str, size: int) -> Appending:
        """Start an object of ``size`` bytes that arrives in pieces (stored as
        APPENDED_TYPE); nothing is visible at ``key`` until finish_append."""
        ...

    def open_append(self, appending: Appending) -> Appender:
        """A writer of the bytes that follow ``appending.size``; one at a time."""
        ...

    def finish_append(self, appending: Appending) -> None:
        """Put the object together at its key (all its bytes are in); done twice,
        the second call finds it done."""
        ...

    def abort_append(self, appending: Appending) -> None:
        """Forget the bytes of an append that will not be finished (idempotent)."""
        ...


@dataclass(frozen=True)
class Appending:
    """Where an append stands: the caller records it (in the database) between
    requests and hands it back. The first ``size`` bytes are durable."""

    key: str
    size: int = 0
    upload_id: str = ""  # S3: the multipart upload; "" in a folder
    part_size: int = 0  # S3: every part but the last is this long
    parts: int = 0  # S3: the parts stored; the bytes after them wait in a staging object


class Appender(Protocol):
    """Appends one request's bytes (storage.open_append); used from one thread."""

    def write(self, data: bytes) -> Appending | None:
        """Append ``data``; a newer Appending when more bytes became durable
        (a checkpoint the caller may record), else None."""
        ...

    def close(self, keep: bool = True) -> Appending:
        """Make what was written durable and say where the append stands;
        keep=False forgets the bytes since the last checkpoint write returned
        (or since it opened), and returns that."""
        ...


MAX_KEY_BYTES = 1024  # the S3 limit; the local backend keeps to it as well

# Fixed so that playlists and segments get the same type on every machine,
# whatever its mime.types says.
MEDIA_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".vtt": "text/vtt",
}


def guess_content_type(key: str) -> str:
    name = key.rpartition("/")[2]
    dot = name.rfind(".")
    if dot > 0 and (fixed := MEDIA_TYPES.get(name[dot:].lower())):
        return fixed
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _bad(what: str, value: str) -> InvalidKey:
    return InvalidKey(f"invalid storage {what}: {value[:200]!r}")


# Backslashes and control characters: never part of a key.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


def _utf8_len(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates from a badly decoded name
        return MAX_KEY_BYTES + 1


def check_key(key: str) -> str:
    """Return ``key`` if it names an object: relative, no empty/'.'/'..' part, no
    backslash or control character, no trailing '/'."""
    if (not key or key.startswith("/") or key.endswith("/") or _FORBIDDEN.search(key)
            or _utf8_len(key) > MAX_KEY_BYTES):
        raise _bad("key", key)
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise _bad("key", key)
    return key


def check_prefix(prefix: str) -> str:
    """Like ``check_key`` but "" (everything) and a trailing '/' are allowed."""
    if prefix:
        try:
            check_key(prefix + "x")
        except InvalidKey:
            raise _bad("prefix", prefix) from None
    return prefix


# Temporary files live beside their target so that os.replace stays a rename on
# one filesystem; listings skip names with this prefix.
TMP_PREFIX = ".stb-tmp-"
# An append in progress (begin_append): beside its target too, also never listed,
# and not a temporary file: it may wait days for its client, until its owner aborts it.
PARTIAL_PREFIX = ".stb-partial-"
APPENDED_TYPE = "application/octet-stream"


@contextmanager
def replacing(target: Path) -> Iterator[str]:
    """A temporary file beside target that replaces it only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
