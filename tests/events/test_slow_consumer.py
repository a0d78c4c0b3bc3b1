"""A client that stops reading is dropped (its queue on the server overflowed) while a
fast one on the same server process hears every event, in order."""

from __future__ import annotations

import json
import struct

from stb_origin import eventlog
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.drm.support import household
from tests.events.clients import StalledSocket, next_event, socket, subscribed
from tests.support.http import serve_process

PAYLOAD = "x" * 16_000
# ~8 MB: more than the kernel's socket buffers (a few MB) and a queue of 16 events hold,
# few enough that the stalled client reads its pile before the server gives up on it.
EVENTS = 500
QUEUE = 16


def test_a_slow_consumer_is_dropped_and_a_fast_one_hears_everything(
        settings: Settings, services: Services) -> None:
    fast_box, slow_box = household(services), household(services)
    with serve_process(settings.with_(events_queue=QUEUE)) as (_process, base_url), \
            socket(base_url, fast_box.token) as fast:
        subscribed(fast)
        slow = StalledSocket(base_url, slow_box.token)
        try:
            opcode, first = next(slow.frames())
            assert json.loads(first)["type"] == "subscribed"
            published = []
            for n in range(EVENTS):
                published.append(eventlog.publish(services.redis, eventlog.CATALOG,
                                                  {"n": n, "pad": PAYLOAD}))
                # Keeping up, as a live client does.
                assert next_event(fast)["id"] == published[-1]
            # What reached the stalled one: a prefix of the events, then its close.
            frames = list(slow.frames())
        finally:
            slow.close()
    *events, (close_opcode, close) = frames
    assert close_opcode == 0x8
    assert struct.unpack("!H", close[:2])[0] == 4008
    assert close[2:].decode().startswith("slow_consumer:")
    offsets = [json.loads(payload)["id"] for _opcode, payload in events]
    assert 0 < len(offsets) < EVENTS
    assert offsets == published[:len(offsets)]
