"""Storage in a local folder: atomic writes, and no key can reach outside the root."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from stb_origin.settings import Settings, SettingsError
from stb_origin.storage.base import (
    APPENDED_TYPE,
    PARTIAL_PREFIX,
    TMP_PREFIX,
    Appending,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
    check_key,
    check_prefix,
    guess_content_type,
    replacing,
)
from stb_origin.storage.stale import Swept, remove_stale

# The content type rides on the file as an extended attribute; where the filesystem
# has none, stat falls back to guessing from the extension.
CONTENT_TYPE_XATTR = "user.stb.content_type"
FILE_MODE = 0o644
# An append makes its bytes durable (fsync) this often, so that a crash loses at
# most this much of a long request; more often costs throughput.
APPEND_CHECKPOINT_BYTES = 64 * 1024 * 1024
_HIDDEN = (TMP_PREFIX, PARTIAL_PREFIX)


class LocalStorage:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> LocalStorage:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise SettingsError(f"STB_STORAGE_URL: expected file:///absolute/path, got {url!r}")
        return cls(Path(url2pathname(unquote(parts.path))))

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # -- keys to paths -------------------------------------------------------

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.rpartition("/")[2].startswith(_HIDDEN):
            raise InvalidKey(f"invalid storage key: {key!r}")
        path = self.root.joinpath(*key.split("/"))
        self._inside(path, key)
        return path

    def _inside(self, path: Path, key: str) -> None:
        # resolve() follows every symlink that exists along the way, so a link
        # pointing out of the root makes the key invalid instead of a way out.
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # symlink loops
            raise InvalidKey(f"storage key does not resolve: {key!r}") from exc
        if not real.is_relative_to(self.root):
            raise InvalidKey(f"storage key leads outside the storage root: {key!r}")

    def local_path(self, key: str) -> Path:
        return self._path(key)

    # -- writing -------------------------------------------------------------

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        # Copy, never move: the caller keeps its file. copyfile uses the kernel's
        # zero-copy paths (sendfile / copy_file_range) where it can.
        if not path.is_file():
            raise FileNotFoundError(f"no such file to store: {path}")
        self._write(key, content_type, lambda tmp: shutil.copyfile(path, tmp))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write(key, content_type, lambda tmp: Path(tmp).write_bytes(data))

    def _write(self, key: str, content_type: str, fill: Callable[[str], object]) -> None:
        target = self._path(key)
        with _os_errors(key, writing=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            self._inside(target, key)  # mkdir may have walked through a fresh symlink
            with replacing(target) as tmp:
                fill(tmp)
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fchmod(fd, FILE_MODE)
                    _set_content_type(fd, content_type)
                    os.fsync(fd)  # data on disk before the rename makes it visible
                finally:
                    os.close(fd)
            _fsync_dir(target.parent)

    # -- reading -------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with _os_errors(key):
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise ObjectNotFound(key)
            content_type = _get_content_type(path) or guess_content_type(key)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            # A new write is a new inode (os.replace), so this changes on every put.
            etag=f'"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}"',
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            content_type=content_type,
        )

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must be >= 0 and chunk_size > 0")
        path = self._path(key)
        with _os_errors(key):
            file = open(path, "rb")  # noqa: SIM115 - closed by the with below
        with file:
            with _os_errors(key):
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    raise ObjectNotFound(key)
                file.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                with _os_errors(key):
                    chunk = file.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        with _os_errors(key):
            if not stat.S_ISREG(os.stat(source).st_mode):
                raise ObjectNotFound(key)
        with replacing(path) as tmp, _os_errors(key):
            try:
                # Every write to a key makes a new file (os.replace), so a hard link is
                # a copy that can never change: a master of gigabytes is there at once.
                os.unlink(tmp)
                os.link(source, tmp)
            except OSError:  # another file system, or one without hard links
                shutil.copyfile(source, tmp)

    # -- listing and deleting ------------------------------------------------

    def list_keys(self, prefix: str) -> Iterator[str]:
        return iter(sorted(self._walk(check_prefix(prefix))))

    def _walk(self, prefix: str) -> list[str]:
        folder = prefix.rpartition("/")[0]
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        self._inside(base, prefix)
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            here = "" if rel == "." else rel + "/"
            # Descend only where keys can still start with the prefix.
            dirnames[:] = [d for d in dirnames if (here + d + "/").startswith(prefix)
                           or prefix.startswith(here + d + "/")]
            for name in filenames:
                key = here + name
                if (name.startswith(_HIDDEN) or not key.startswith(prefix)
                        or os.path.islink(os.path.join(dirpath, name)) or not _valid(key)):
                    continue  # links are never listed: they could point anywhere
                keys.append(key)
        return keys

    def delete_prefix(self, prefix: str) -> int:
        if not check_prefix(prefix):
            raise InvalidKey("refusing to delete with an empty prefix")
        deleted = self._unlink(self._walk(prefix))
        self._remove_empty_dirs(prefix)
        return deleted

    def delete_keys(self, keys: Iterable[str]) -> int:
        return self._unlink([check_key(key) for key in keys])

    def _unlink(self, keys: Iterable[str]) -> int:
        deleted = 0
        for key in keys:
            with _os_errors(key, writing=True), suppress(FileNotFoundError):
                os.unlink(self.root / key)
                deleted += 1
        return deleted

    def _remove_empty_dirs(self, prefix: str) -> None:
        folder = prefix.rpartition("/")[0]
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        for dirpath, _dirnames, _filenames in os.walk(base, topdown=False):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            if rel != "." and (rel + "/").startswith(prefix):
                with suppress(OSError):  # not empty (a write in flight) or already gone
                    os.rmdir(dirpath)

    def sweep_temporary(self, older_than: datetime, keep: Collection[str] = ()) -> Swept:
        # A write in flight keeps writing its temporary file (copyfile, then one
        # fsync), so only a dead writer's gets old. Appends' partial files are not
        # temporary files: their owner aborts them.
        temporary = (Path(dirpath, name) for dirpath, _dirnames, names in os.walk(self.root)
                     for name in names if name.startswith(TMP_PREFIX))
        return remove_stale(temporary, older_than.timestamp())

    # -- resumable writes: a partial file beside the target, renamed at the end --

    def _partial(self, key: str) -> Path:
        target = self._path(key)
        return target.with_name(PARTIAL_PREFIX + target.name)

    def begin_append(self, key: str, size: int) -> Appending:
        # Nothing on disk until the first byte (open_append): a caller that dies
        # before recording the Appending leaves nothing behind.
        self._partial(key)
        return Appending(key)

    def open_append(self, appending: Appending) -> FolderAppender:
        key = appending.key
        partial = self._partial(key)
        with _os_errors(key, writing=True):
            partial.parent.mkdir(parents=True, exist_ok=True)
            self._inside(partial, key)  # mkdir may have walked through a fresh symlink
            fd = os.open(partial, os.O_RDWR | os.O_CREAT, FILE_MODE)
        return FolderAppender(os.fdopen(fd, "r+b"), appending)

    def finish_append(self, appending: Appending) -> None:
        key = appending.key
        partial, target = self._partial(key), self._path(key)
        if not partial.exists():
            # Finished before (the rename is the last step): the object is there, whole.
            if self.stat(key).size != appending.size:
                raise ObjectNotFound(key)
            return
        with _os_errors(key, writing=True):
            with open(partial, "r+b") as file:
                # A writer killed after its last fsync may have left more than was kept.
                file.truncate(appending.size)
                os.fchmod(file.fileno(), FILE_MODE)
                _set_content_type(file.fileno(), APPENDED_TYPE)
                os.fsync(file.fileno())
            os.replace(partial, target)
            _fsync_dir(target.parent)

    def abort_append(self, appending: Appending) -> None:
        partial = self._partial(appending.key)
        with _os_errors(appending.key, writing=True), suppress(FileNotFoundError):
            os.unlink(partial)
        with suppress(OSError):  # not empty, or gone
            partial.parent.rmdir()

    def check(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable("local storage root is missing or not writable")


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True


@contextmanager
def _os_errors(key: str, writing: bool = False) -> Iterator[None]:
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
        if writing:
            raise StorageError(f"cannot write {key!r}: it clashes with an existing "
                               "object or folder") from exc
        raise ObjectNotFound(key) from exc
    except PermissionError as exc:
        raise StorageError(f"permission denied for {key!r}") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(f"local storage is full: cannot write {key!r}"
                              f" ({exc.strerror})") from exc
        raise StorageUnavailable(f"local storage failed for {key!r}: "
                                 f"{exc.strerror or type(exc).__name__}") from exc


def _set_content_type(fd: int, content_type: str) -> None:
    setxattr = getattr(os, "setxattr", None)
    if setxattr is None:
        return
    try:
        setxattr(fd, CONTENT_TYPE_XATTR, content_type.encode())
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise


class FolderAppender:
    """Appends to a partial file, cut back first to what its Appending kept."""

    def __init__(self, file: BinaryIO, appending: Appending) -> None:
        self.file = file
        self.opened = appending
        self.size = self.synced = appending.size
        with _os_errors(appending.key, writing=True):
            file.truncate(appending.size)
            file.seek(appending.size)

    def write(self, data: bytes) -> Appending | None:
        with _os_errors(self.opened.key, writing=True):
            self.file.write(data)
            self.size += len(data)
            if self.size - self.synced < APPEND_CHECKPOINT_BYTES:
                return None
            return self._sync()

    def _sync(self) -> Appending:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.synced = self.size
        return replace(self.opened, size=self.size)

    def close(self, keep: bool = True) -> Appending:
        try:
            with _os_errors(self.opened.key, writing=True):
                if keep:
                    return self._sync()
                self.file.truncate(self.synced)
                return replace(self.opened, size=self.synced)
        finally:
            # On a full disk, closing fails to flush; what was synced is kept anyway.
            with suppress(OSError):
                self.file.close()


def _get_content_type(path: Path) -> str | None:
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        return str(getxattr(path, CONTENT_TYPE_XATTR).decode())
    except (OSError, UnicodeDecodeError):
        return None


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a folder.
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
