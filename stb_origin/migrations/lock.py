"""One schema change at a time: a lock every process takes before it migrates.

PostgreSQL: a session advisory lock, so replicas on many machines wait for each
other and a crashed holder releases it with its connection. SQLite: ``flock`` on
a file beside the database, which every process on the host that can open the
database can also open (the file stays: deleting a lock file reopens the race).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text

# pg_advisory_lock takes one bigint; this one is "stb-schema" in ASCII.
ADVISORY_KEY = 0x7374622D736368
WAIT_S = 600.0
POLL_S = 0.05


class LockTimeout(TimeoutError):
    pass


@contextmanager
def schema_lock(engine: Engine, timeout_s: float = WAIT_S) -> Iterator[None]:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.connect() as connection, _advisory_lock(connection, timeout_s):
            yield
    elif dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield  # a private in-memory database: nobody to race with
            return
        with _file_lock(Path(database + ".lock"), timeout_s):
            yield
    else:
        raise ValueError(f"no schema lock for {dialect}: use SQLite or PostgreSQL")


@contextmanager
def _advisory_lock(connection: Connection, timeout_s: float) -> Iterator[None]:
    def acquire() -> bool:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                 {"key": ADVISORY_KEY}).scalar_one()
        connection.commit()
        return bool(got)

    _wait(acquire, timeout_s, "the PostgreSQL advisory lock")
    try:
        yield
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
        connection.commit()


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        def acquire() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _wait(acquire, timeout_s, f"the lock file {path}")
        yield
    finally:
        # Closing the descriptor releases the lock (as does the process dying).
        os.close(fd)


def _wait(acquire: Callable[[], bool], timeout_s: float, what: str) -> None:
    # Polled rather than blocking so that a stuck holder ends in a clear error.
    deadline = time.monotonic() + timeout_s
    while not acquire():
        if time.monotonic() >= deadline:
            raise LockTimeout(f"waited {timeout_s:.0f} s for {what}: another process is"
                              " migrating the schema, or died holding the lock")
        time.sleep(POLL_S)
