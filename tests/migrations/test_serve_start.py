"""`stb-origin serve --server granian --workers 2` on a fresh data dir: before
migrations its workers raced in create_all (`table users already exists`) and
granian sometimes gave up altogether. It must start cleanly every time."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stb_origin import migrations
from stb_origin.settings import Settings

STARTS = 3
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 45.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_and_stop(settings: Settings, data_dir: Path) -> str:
    """Start, wait for /readyz 200, SIGTERM; returns the log. Fails if any process
    of the server's group outlives it."""
    port = _free_port()
    env = {**os.environ, "STB_DATA_DIR": str(data_dir), "STB_REDIS_URL": str(settings.redis_url),
           "STB_QUEUE_NAME": settings.queue_name}
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with log_path.open("wb") as log:
        # Its own process group: granian's workers are in it, and must leave with it.
        server = subprocess.Popen(
            [sys.executable, "-m", "stb_origin.cli", "serve", "--port", str(port),
             "--server", "granian", "--workers", "2"],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "not ready in time\n" + log_path.read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        assert server.wait(STOP_TIMEOUT_S) == 0, log_path.read_text()
        with pytest.raises(ProcessLookupError):
            os.killpg(server.pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    return log_path.read_text()


def test_granian_with_two_workers_starts_cleanly_on_a_fresh_data_dir(
        settings: Settings, tmp_path: Path) -> None:
    for start in range(STARTS):
        data_dir = tmp_path / f"fresh-{start}"
        log = _start_and_stop(settings, data_dir)
        for symptom in ("already exists", "Traceback", "Unexpected exit"):
            assert symptom not in log, log
        url = settings.with_(data_dir=data_dir).resolved_database_url
        assert migrations.current(url) == migrations.heads()
