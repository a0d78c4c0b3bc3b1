"""The key audit in batches: a burst is written whole in few transactions, rows wait
off the request path, and a clean shutdown — of the writer, and of a real
server process on SIGTERM — writes every row still waiting."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import func, select

from stb_origin.db import Database
from stb_origin.db.types import ID, utcnow
from stb_origin.drm import audit
from stb_origin.drm.audit import KeyAudit
from stb_origin.drm.auditwriter import AuditWriter
from stb_origin.services import Services
from tests.drm.support import Box, entitle, household
from tests.support.http import serve_process


def _request(n: int) -> audit.KeyRequest:
    return audit.KeyRequest(subject="operator", device_id=f"box-{n % 7}", client_id=None,
                            asset_id="a" * 32, key_id=f"k{n}", client_address="127.0.0.1",
                            forwarded_for=None, request_id=f"req-{n}")


def _count(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(KeyAudit)) or 0)


def test_a_burst_from_many_threads_is_written_whole_in_batches(db: Database) -> None:
    writer = AuditWriter(db.engine, batch_rows=200, flush_after_s=0.05)
    def burst(start: int) -> None:
        for n in range(start, start + 500):
            writer.record(audit.row(_request(n), audit.DELIVERED, utcnow()))

    threads = [threading.Thread(target=burst, args=(t * 500,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert _count(db) == 4000
    with db.session() as session:
        keys = set(session.scalars(select(KeyAudit.key_id)))
        ids = set(session.scalars(select(KeyAudit.id)))
    assert keys == {f"k{n}" for n in range(4000)}
    # Each row its own id, made with its batch.
    assert len(ids) == 4000 and all(ID.fullmatch(id_) for id_ in ids)
    # Batches, not a transaction per row.
    assert 1 <= writer.batches_written <= 4000 // 20


def test_each_engine_stores_every_column_as_given(either_db: Database) -> None:
    # The batch goes to the driver as compiled once, with the column types' own
    # conversions: the rows read back through the ORM are the rows recorded.
    writer = AuditWriter(either_db.engine, batch_rows=1000, flush_after_s=3600)
    at = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    rows = [audit.row(_request(n), audit.DELIVERED, at, account_id="c" * 32) for n in range(3)]
    rows[1]["forwarded_for"] = "203.0.113.7, 198.51.100.2"
    for row in rows:
        writer.record(row)
    writer.close()
    with either_db.session() as session:
        stored = {r.id: r for r in session.scalars(select(KeyAudit))}
    assert set(stored) == {row["id"] for row in rows}
    for row in rows:
        found = stored[row["id"]]
        assert {name: getattr(found, name) for name in row} == row
        assert found.created_at.utcoffset() == timedelta(0)  # kept as UTC


def test_rows_wait_for_their_batch_and_close_writes_them(db: Database) -> None:
    writer = AuditWriter(db.engine, batch_rows=1000, flush_after_s=3600)
    for n in range(3):
        writer.record(audit.row(_request(n), "not_entitled", utcnow(), account_id="c" * 32))
    assert writer.pending() == 3 and _count(db) == 0  # nothing written on the request path
    writer.close()
    assert writer.pending() == 0 and _count(db) == 3
    writer.close()  # twice is harmless (the lifespan, then Services.close)
    # A row recorded after close (a request answered during shutdown) is written at once.
    writer.record(audit.row(_request(9), audit.DELIVERED, utcnow()))
    assert _count(db) == 4


def test_a_full_batch_is_written_without_waiting_for_the_interval(db: Database) -> None:
    writer = AuditWriter(db.engine, batch_rows=10, flush_after_s=3600)
    for n in range(10):
        writer.record(audit.row(_request(n), audit.DELIVERED, utcnow()))
    # The tenth row wakes the thread. Polled (close() would write them too, so
    # the rows must be seen before it).
    deadline = time.monotonic() + 10
    while _count(db) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _count(db) == 10
    writer.close()


def test_sigterm_to_the_server_writes_every_audit_row_still_waiting(services: Services,
                                                                    film) -> None:
    asset_id, key = film
    boxes: list[Box] = []
    for _ in range(3):
        box = household(services)
        entitle(services, box.account_id, asset_id)
        boxes.append(box)
    path = f"/keys/{asset_id}/{key.key_id}"
    with serve_process(services.settings) as (process, base_url):
        def fetch(n: int) -> int:
            headers = {"Authorization": f"Bearer {boxes[n % 3].token}"}
            return httpx.get(base_url + path, headers=headers, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(fetch, range(90)))
        assert statuses == [200] * 90
        process.send_signal(signal.SIGTERM)
        # uvicorn drains, runs the lifespan shutdown, then re-raises the signal.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert _count(services.db) == 90
