"""The key audit, written in batches by a background thread instead of one commit per fetch.

A key fetch only appends its row to a list in memory; a thread started on the
first row writes what has gathered, in one transaction (one multi-row
insert), as soon as ``batch_rows`` rows are waiting or ``flush_after_s`` after
the first of them. The same transaction records when devices were last seen
(at most once a minute per device and process, see ``accounts.devices``).

What can be lost: nothing on a clean shutdown — the app's lifespan (and
``Services.close``) calls ``close()``, which writes everything still waiting.
A crash (SIGKILL, power loss) loses the rows not yet written: at most the
fetches of the last ``flush_after_s`` seconds, or of the last ``batch_rows``
rows, whichever came first. While the database refuses writes, rows wait and are
retried; beyond ``max_pending`` the oldest are dropped and counted in
``stb_key_audit_lost_total``, so an outage cannot exhaust memory.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert
from sqlalchemy.exc import SQLAlchemyError

from stb_origin.accounts.devices import touch_devices
from stb_origin.db.types import new_ids
from stb_origin.drm.audit import KeyAudit
from stb_origin.observability import metrics

log = logging.getLogger("stb_origin.keys.audit")

BATCH_ROWS = 500
FLUSH_AFTER_S = 0.2
MAX_PENDING = 200_000
RETRY_AFTER_S = 1.0
_TABLE = cast(Table, KeyAudit.__table__)


class AuditWriter:
    def __init__(self, engine: Engine, *, batch_rows: int = BATCH_ROWS,
                 flush_after_s: float = FLUSH_AFTER_S, max_pending: int = MAX_PENDING) -> None:
        self._engine = engine
        self._insert = _BatchInsert(engine)
        self._batch_rows = batch_rows
        self._flush_after_s = flush_after_s
        self._max_pending = max_pending
        self._rows: list[dict[str, Any]] = []
        self._seen: dict[str, datetime] = {}  # device id -> when it was seen
        self._wake = threading.Condition()
        # Held while a batch is written: rows reach the table in the order they came.
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches_written = 0

    def record(self, row: dict[str, Any]) -> None:
        with self._wake:
            self._rows.append(row)
            closing = self._closing
            if not closing:
                if self._thread is None:
                    self._start()
                elif len(self._rows) >= self._batch_rows:
                    self._wake.notify()
        if closing:
            # Answered during shutdown, after the thread stopped: written at once.
            with contextlib.suppress(SQLAlchemyError):  # flush() logged it
                self.flush()

    def seen(self, device_id: str, at: datetime) -> None:
        with self._wake:
            self._seen[device_id] = at
            if self._thread is None and not self._closing:
                self._start()

    def pending(self) -> int:
        with self._wake:
            return len(self._rows)

    def flush(self) -> int:
        """Write everything waiting now, in the caller's thread; how many rows."""
        with self._writing:
            with self._wake:
                rows, self._rows = self._rows, []
                seen, self._seen = self._seen, {}
            if not rows and not seen:
                return 0
            try:
                with self._engine.begin() as conn:
                    if rows:
                        self._insert.execute(conn, rows)
                    if seen:
                        touch_devices(conn, seen)
            except SQLAlchemyError as exc:
                self._put_back(rows, seen)
                # The class only: the message would carry the rows' values.
                log.error("key audit not written; will retry",
                          extra={"error": type(exc).__name__, "rows": len(rows)})
                raise
            self.batches_written += 1
            return len(rows)

    def close(self) -> None:
        """Stop the thread and write what is left. Safe to call more than once."""
        with self._wake:
            self._closing = True
            thread = self._thread
            self._wake.notify()
        if thread is not None:
            thread.join(timeout=30)
        try:
            self.flush()
        except SQLAlchemyError:
            with self._wake:
                lost = len(self._rows)
            metrics.KEY_AUDIT_LOST.inc(lost)
            log.error("key audit rows lost at shutdown: the database refused them",
                      extra={"rows": lost})

    def _start(self) -> None:
        # Started on first use, not in the constructor: a process that never
        # serves a key (or forks after building its services) has no thread.
        self._thread = threading.Thread(target=self._run, name="key-audit-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._rows or self._seen or self._closing):
                    self._wake.wait()
                if self._closing:
                    return  # close() writes the rest
                if len(self._rows) < self._batch_rows:
                    # Gather a batch: woken early when it fills up.
                    self._wake.wait(timeout=self._flush_after_s)
                if self._closing:
                    return
            try:
                self.flush()
            except SQLAlchemyError:
                with self._wake:  # close() cuts the wait short
                    self._wake.wait(timeout=RETRY_AFTER_S)

    def _put_back(self, rows: list[dict[str, Any]], seen: dict[str, datetime]) -> None:
        with self._wake:
            self._rows[:0] = rows
            for device_id, at in seen.items():
                self._seen.setdefault(device_id, at)
            excess = len(self._rows) - self._max_pending
            if excess > 0:
                del self._rows[:excess]
                metrics.KEY_AUDIT_LOST.inc(excess)


class _BatchInsert:
    """The audit's multi-row insert, compiled once and handed to the driver as it is.

    ``conn.execute(insert(table), rows)`` spends ~25 µs of Python per row on
    SQLAlchemy's parameter handling, all of it holding the GIL in this thread
    while the event loop waits to answer key fetches: at 2,000 fetches/s that
    was a 10 ms stall five times a second, the p99 of bench/key_delivery.py.
    Here each row costs its column types' own bind processors (the times) and
    a tuple; the driver's inserts run without the GIL. The rows' ids are made
    here, in one read of the system's randomness per batch, rather than one
    system call per fetch on the event loop.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = insert(_TABLE).compile(dialect=dialect)
        self._sql = compiled.string
        self._order = compiled.positiontup  # None for named parameter styles
        self._convert = {column.key: convert for column in _TABLE.columns
                         if (convert := column.type.bind_processor(dialect)) is not None}

    def execute(self, conn: Any, rows: list[dict[str, Any]]) -> None:
        convert = self._convert
        # Kept in the rows: a batch retried after a failed transaction keeps its ids.
        for row, id_ in zip(rows, new_ids(len(rows)), strict=True):
            row.setdefault("id", id_)
        if self._order is None:
            params: list[Any] = [{name: convert[name](value) if name in convert else value
                                  for name, value in row.items()} for row in rows]
        else:
            params = [tuple(convert[name](row[name]) if name in convert else row[name]
                            for name in self._order) for row in rows]
        conn.exec_driver_sql(self._sql, params)
