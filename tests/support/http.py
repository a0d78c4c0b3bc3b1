"""A real uvicorn server on a free 127.0.0.1 port, in a thread (uvicorn's tests/utils.py).

    with run_server(app) as base_url:
        httpx.get(base_url + "/health")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 10.0


@contextmanager
def run_server(app: ASGIApp, **config: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields the base URL. ``config`` goes to
    ``uvicorn.Config`` (e.g. ``lifespan="on"``, ``http="h11"``)."""
    # log_config=None: leave the test run's logging alone (records reach caplog).
    options: dict[str, Any] = {"lifespan": "off", "log_level": "warning", "ws": "none",
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
