"""Fan-out across server processes: one event published once reaches a client on each
of two real servers (uvicorn and granian), over a WebSocket and over SSE."""

from __future__ import annotations

from stb_origin import eventlog
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.drm.support import Box, household
from tests.events.clients import next_event, socket, sse, sse_subscribed, subscribed
from tests.support.http import serve_process


def test_two_servers_each_with_a_client_both_hear_one_event(
        settings: Settings, services: Services, box: Box) -> None:
    other_box = household(services)  # a device has two connections at most (the default)
    with serve_process(settings, "uvicorn") as (_p1, first), \
            serve_process(settings, "granian") as (_p2, second), \
            socket(first, box.token) as ws, \
            socket(second, box.token) as ws_on_granian, \
            sse(second, other_box.token) as stream:
        subscribed(ws)
        subscribed(ws_on_granian)
        sse_subscribed(stream)
        offset = eventlog.publish(services.redis, eventlog.CATALOG, {"title": "t1"}, key="t1")
        assert offset is not None

        heard = next_event(ws)
        assert heard == {"type": "event", "id": offset, "topic": "catalog", "key": "t1",
                         "data": {"title": "t1"}}
        assert next_event(ws_on_granian) == heard
        message = stream.next()
        assert (message["id"], message["event"]) == (offset, "catalog")
        # Once each: what comes next is the next event, not a copy.
        second_offset = eventlog.publish(services.redis, eventlog.CATALOG, {"title": "t2"})
        assert next_event(ws)["id"] == second_offset
        assert next_event(ws_on_granian)["id"] == second_offset
        assert stream.next()["id"] == second_offset
