"""What a killed server leaves (partial uploads, storage temporary files) is swept at
the next start-up and every few minutes; what live writers hold is not."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from stb_origin.app.sweeper import sweep_once
from stb_origin.ingest.leftovers import upload_dir
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage import StorageUnavailable
from stb_origin.storage.base import TMP_PREFIX
from tests.support.http import serve_process
from tests.support.logs import captured

STALE_AFTER_S = 60.0
MB = 1024 * 1024


def _aged(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _swept(kind: str) -> float:
    return REGISTRY.get_sample_value("stb_temp_swept_files_total", {"kind": kind}) or 0.0


def test_a_sweep_removes_stale_leftovers_counts_and_logs_them(services: Services) -> None:
    settings = services.settings.with_(temp_stale_after_s=STALE_AFTER_S)
    services.settings = settings
    uploads = upload_dir(settings)
    dead_upload = _aged(uploads / "upload-dead.part", 3000, 2 * STALE_AFTER_S)
    dead_copy = _aged(settings.data_dir / "storage" / "sources" / "a" / f"{TMP_PREFIX}dead",
                      700, 2 * STALE_AFTER_S)
    live_upload = _aged(uploads / "upload-live.part", 10, 0)
    before = {kind: _swept(kind) for kind in ("upload", "storage")}

    with captured(20) as logs:
        sweep_once(services, datetime.now(UTC))

    assert not dead_upload.exists() and not dead_copy.exists()
    assert live_upload.exists()
    assert {kind: _swept(kind) - before[kind] for kind in before} == {"upload": 1,
                                                                      "storage": 1}
    lines = {line["kind"]: line for line in logs.lines
             if line["msg"] == "swept temporary files a dead process left"}
    assert (lines["upload"]["files"], lines["upload"]["bytes"]) == (1, 3000)
    assert (lines["storage"]["files"], lines["storage"]["bytes"]) == (1, 700)


class _UnreachableStorage:
    def sweep_temporary(self, older_than: datetime, keep: object = ()) -> None:
        raise StorageUnavailable("S3 endpoint unreachable")


def test_storage_down_does_not_stop_the_upload_sweep(services: Services) -> None:
    dead_upload = _aged(upload_dir(services.settings) / "upload-dead.part", 10, 7200)
    services.storage = _UnreachableStorage()  # type: ignore[assignment]
    with captured(20) as logs:
        sweep_once(services, datetime.now(UTC))
    assert not dead_upload.exists()
    failed = [line for line in logs.lines if line["msg"] == "sweeping temporary files failed"]
    assert [line["kind"] for line in failed] == ["storage"]


def _start_upload(base_url: str, token: str, body_bytes: int) -> socket.socket:
    """Send the headers and the first part of a much bigger multipart body, then stop."""
    head = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            b"Content-Type: video/mp4\r\n\r\n")
    port = int(base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/assets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 + f"Authorization: Bearer {token}\r\n".encode()
                 + b"Content-Type: multipart/form-data; boundary=B\r\n"
                 + f"Content-Length: {300 * MB}\r\n\r\n".encode() + head
                 + b"\x00\x00\x00\x20ftypisom" + b"\0" * body_bytes)
    return sock


def _wait_for(condition: object, what: str, timeout_s: float = 15) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _log_lines(settings: Settings) -> list[dict[str, object]]:
    text = (settings.data_dir / "serve-uvicorn.log").read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_server_killed_mid_upload_leaves_files_the_next_start_sweeps(
        settings: Settings, services: Services) -> None:
    settings = settings.with_(temp_stale_after_s=STALE_AFTER_S)
    uploads = upload_dir(settings)
    token = services.signer.issue(["assets:write"])
    with serve_process(settings) as (process, base_url):
        sock = _start_upload(base_url, token, 8 * MB)
        _wait_for(lambda: any(p.stat().st_size >= 4 * MB for p in uploads.glob("*.part")),
                  "the upload to reach its file")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        sock.close()
    [killed] = uploads.glob("*.part")  # the fault: nothing removes it

    # Age what the kill left instead of waiting an hour; add a copy into storage
    # the kill cut short, and files of writers still alive elsewhere.
    then = time.time() - 2 * STALE_AFTER_S
    os.utime(killed, (then, then))
    storage = settings.data_dir / "storage"
    dead_copy = _aged(storage / "sources" / "a" / f"{TMP_PREFIX}copy", MB, 2 * STALE_AFTER_S)
    live_upload = _aged(uploads / "upload-elsewhere.part", MB, 0)
    live_copy = _aged(storage / "sources" / "b" / f"{TMP_PREFIX}copy", MB, 0)

    with serve_process(settings) as (_process, base_url):
        _wait_for(lambda: {line.get("kind") for line in _log_lines(settings)
                           if line["msg"] == "swept temporary files a dead process left"}
                  == {"upload", "storage"}, "the start-up sweep")
        metrics = httpx.get(base_url + "/metrics", timeout=10).text

    assert not killed.exists() and not dead_copy.exists()
    assert live_upload.exists() and live_copy.exists()
    assert 'stb_temp_swept_files_total{kind="upload"} 1.0' in metrics
    assert 'stb_temp_swept_files_total{kind="storage"} 1.0' in metrics
