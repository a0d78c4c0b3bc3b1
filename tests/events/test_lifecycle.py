"""A connection's life on a real server process: heartbeats while nothing happens, and
on SIGTERM every WebSocket closed with 1001 and every SSE stream ended, the server
gone without waiting for its clients."""

from __future__ import annotations

import os
import signal

import pytest

from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.drm.support import household
from tests.events.clients import closed_with, receive, socket, sse, sse_subscribed, subscribed
from tests.support.http import serve_process


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_heartbeats_come_while_nothing_happens(settings: Settings, services: Services,
                                               server: str) -> None:
    box = household(services)
    with serve_process(settings.with_(events_heartbeat_s=0.2), server) as (_p, base_url), \
            socket(base_url, box.token) as ws, sse(base_url, box.token) as stream:
        subscribed(ws)
        sse_subscribed(stream)
        assert [receive(ws) for _ in range(2)] == [{"type": "heartbeat"}] * 2
        assert stream.next(skip_heartbeats=False) == {"comment": "heartbeat"}


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_sigterm_closes_sockets_with_1001_and_ends_streams(settings: Settings,
                                                           services: Services,
                                                           server: str) -> None:
    boxes = [household(services) for _ in range(2)]
    with serve_process(settings, server) as (process, base_url), \
            socket(base_url, boxes[0].token) as ws, sse(base_url, boxes[1].token) as stream:
        subscribed(ws)
        sse_subscribed(stream)
        os.kill(process.pid, signal.SIGTERM)
        assert closed_with(ws) == (1001, "server shutting down")
        assert stream.ended()
        # Well inside the 30 s uvicorn would give open connections.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
