"""Why processing failed, named for the person who has to act on it: a full disk
and unreachable storage are an operator's to fix, anything else is a bug."""

from __future__ import annotations

import errno
from collections.abc import Iterator

from stb_origin.storage import StorageFull, StorageUnavailable

DISK_FULL = "disk_full"
STORAGE_UNAVAILABLE = "storage_unavailable"
INTERNAL_ERROR = "internal_error"

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13  # "database or disk is full"
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def failure_cause(exc: BaseException) -> tuple[str, str]:
    """(code, message) for an asset that failed with ``exc``. The cause may sit
    anywhere in the chain: a database driver's error wrapped by SQLAlchemy, an
    OSError wrapped by a storage backend."""
    chain = list(_chain(exc))
    full = next((e for e in chain if _is_full(e)), None)
    if full is not None:
        return DISK_FULL, (f"the server ran out of disk space ({_short(full)}); it can be"
                           " processed once an operator frees space")
    unavailable = next((e for e in chain if isinstance(e, StorageUnavailable)), None)
    if unavailable is not None:
        return STORAGE_UNAVAILABLE, (f"storage was unavailable ({_short(unavailable)});"
                                     " it can be processed once storage is back")
    return INTERNAL_ERROR, f"processing failed ({type(exc).__name__})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # SQLAlchemy keeps the driver's error in .orig, not always as the cause.
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, StorageFull):
        return True
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    # Database drivers say it their own way: sqlite3 and psycopg.
    sqlite_code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF == SQLITE_FULL:
        return True
    return getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL


def _short(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
