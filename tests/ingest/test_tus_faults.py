"""A real `stb-origin serve` killed with SIGKILL in the middle of a tus upload: at
the step between "every byte is in" and "the asset exists", and in the middle of
a long PATCH. After a restart nothing is lost, doubled or left behind, and the
upload becomes exactly one asset."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from sqlalchemy import update

from stb_origin.assets.records import Asset
from stb_origin.ingest.tus_records import TusUpload
from stb_origin.services import build_services
from stb_origin.settings import Settings
from stb_origin.storage.base import PARTIAL_PREFIX
from tests.support.http import serve_process
from tests.support.tus import OCTETS, Tus, master_bytes

MB = 1024 * 1024


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _token(settings: Settings) -> str:
    services = build_services(settings)
    try:
        return services.signer.issue(["assets:write"])
    finally:
        services.close()


def _lease_lapses(settings: Settings, upload_id: str) -> None:
    """The dead server's lease runs out (resumable.LEASE_S) without the test waiting."""
    services = build_services(settings)
    try:
        with services.db.session() as session:
            session.execute(update(TusUpload).where(TusUpload.id == upload_id).values(
                writer_until=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        services.close()


def _assets(settings: Settings) -> list[Asset]:
    services = build_services(settings)
    try:
        with services.db.session() as session:
            return list(session.query(Asset))
    finally:
        services.close()


def _partials(settings: Settings) -> list[str]:
    return [p.name for p in (settings.data_dir / "storage").rglob(f"{PARTIAL_PREFIX}*")]


def test_killed_between_the_last_byte_and_the_asset_it_makes_one_asset(
        settings: Settings, migrated_postgres_url: str) -> None:
    settings = settings.with_(database_url=migrated_postgres_url)
    token = _token(settings)
    data = master_bytes(3 * MB + 5)
    with psycopg.connect(migrated_postgres_url.replace("+psycopg", "")) as locker:
        with serve_process(settings) as (process, base_url):
            tus = Tus(base_url, token)
            url = tus.new(len(data))
            upload_id = url.rsplit("/", 1)[1]
            tus.patch(url, 0, data[:MB])
            # Writes to the asset table wait: the finishing request stops at the asset.
            locker.execute("LOCK TABLE assets IN EXCLUSIVE MODE")
            last = threading.Thread(target=_send_quietly, args=(tus, url, MB, data[MB:]))
            last.start()
            _wait(lambda: tus.head(url).headers["upload-offset"] == str(len(data)),
                  "every byte to be in")
            _wait(lambda: _inserting_an_asset(locker), "the finish to reach the asset")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            last.join(timeout=30)
        locker.rollback()
    assert _assets(settings) == []
    _lease_lapses(settings, upload_id)

    with serve_process(settings) as (process, base_url):
        tus = Tus(base_url, token)
        head = tus.head(url.replace(url.split("/v1/")[0], base_url))
        asset_id = head.headers["stb-asset"]
        again = tus.patch(url.replace(url.split("/v1/")[0], base_url), len(data), b"")
        assert again.headers["stb-asset"] == asset_id
    [asset] = _assets(settings)
    assert asset.id == asset_id and asset.status == "queued"
    source = settings.data_dir / "storage" / asset.source_key
    assert hashlib.sha256(source.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert _partials(settings) == []


def _send_quietly(tus: Tus, url: str, offset: int, body: bytes) -> None:
    # The server is killed while this waits for its answer.
    with contextlib.suppress(httpx.HTTPError):
        tus.patch(url, offset, body)


def _inserting_an_asset(locker: psycopg.Connection) -> bool:
    waiting = locker.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE 'INSERT INTO assets%%'").fetchone()
    return bool(waiting and waiting[0])


def test_killed_mid_patch_it_keeps_the_last_checkpoint_and_no_extra_byte(
        settings: Settings) -> None:
    token = _token(settings)
    data = master_bytes(72 * MB + 9)
    sent = 70 * MB
    with serve_process(settings) as (process, base_url):
        tus = Tus(base_url, token)
        url = tus.new(len(data))
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as patch:
            patch.sendall(f"PATCH {url.removeprefix(base_url)} HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
                          f"Upload-Offset: 0\r\nContent-Type: {OCTETS['Content-Type']}\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:sent])
            # The 64 MiB checkpoint is recorded; more than that is in the file.
            _wait(lambda: int(tus.head(url).headers["upload-offset"]) > 0, "a checkpoint")
            _wait(lambda: _partial_size(settings) > 65 * MB, "bytes past it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    in_the_file = _partial_size(settings)
    upload_id = url.rsplit("/", 1)[1]
    _lease_lapses(settings, upload_id)
    with serve_process(settings) as (process, base_url):
        tus = Tus(base_url, token)
        url = f"{base_url}/v1/uploads/{upload_id}"
        kept = int(tus.head(url).headers["upload-offset"])
        # What the last checkpoint made durable: less than the file held at the kill,
        # whose extra bytes the next writer cuts off instead of keeping twice.
        assert 64 * MB <= kept < in_the_file
        done = tus.send(url, data, 16 * MB)
    [asset] = _assets(settings)
    assert asset.id == done.headers["stb-asset"]
    source = settings.data_dir / "storage" / asset.source_key
    assert source.stat().st_size == len(data)
    assert hashlib.sha256(source.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert _partials(settings) == []


def _partial_size(settings: Settings) -> int:
    return sum(p.stat().st_size
               for p in (settings.data_dir / "storage").rglob(f"{PARTIAL_PREFIX}*"))
