"""Real servers on free 127.0.0.1 ports: uvicorn in a thread (uvicorn's tests/utils.py),
or `stb-origin serve` as a process.

    with run_server(app) as base_url:
        httpx.get(base_url + "/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from stb_origin.settings import Settings

STARTUP_TIMEOUT_S = 10.0


@contextmanager
def run_server(app: ASGIApp, **config: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields the base URL. ``config`` goes to
    ``uvicorn.Config`` (e.g. ``lifespan="off"``, ``http="h11"``)."""
    # log_config=None: leave the test run's logging alone (records reach caplog).
    # The lifespan runs, as under a real server: it closes what the app opened in
    # its event loop (the key path's Redis connection) before the loop goes.
    options: dict[str, Any] = {"lifespan": "on", "log_level": "warning", "ws": "none",
                               "access_log": False, "log_config": None}
    options.update(config)
    # Bind first, so the port is ours before the server thread starts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    # An exception in the thread reaches pytest through threading.excepthook.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in time")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()


@contextmanager
def serve_process(settings: Settings, server: str = "uvicorn",
                  ready_timeout_s: float = 30) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`stb-origin serve --server SERVER` as a real process on the settings' data dir,
    Redis and queue; yields (process, base URL) once /readyz answers, kills it after."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.to_env()}
    log_path = settings.data_dir / f"serve-{server}.log"
    with open(log_path, "wb") as log:
        # Its own process group: granian's workers are its children, and a kill of
        # the main process alone would leave them running.
        process = subprocess.Popen([sys.executable, "-m", "stb_origin.cli", "serve",
                                    "--port", str(port), "--server", server], env=env,
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, f"{server} did not start\n" + log_path.read_text()
            try:
                if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield process, base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
