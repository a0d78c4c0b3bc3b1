"""Offsets: a client that comes back with its last offset gets exactly what it missed,
in order; one whose offset the log no longer holds is told to resync; a malformed
offset is refused."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from redis import Redis

from stb_origin import eventlog
from stb_origin.services import Services
from tests.drm.support import Box, household
from tests.events.clients import (
    closed_with,
    next_event,
    socket,
    sse,
    sse_subscribed,
    subscribed,
)


def _publish(redis: Redis, count: int, topic: str = eventlog.CATALOG) -> list[str]:
    offsets = [eventlog.publish(redis, topic, {"n": n}) for n in range(count)]
    assert all(offsets)
    return [o for o in offsets if o]


def test_a_socket_that_comes_back_with_its_offset_gets_exactly_what_it_missed(
        live_api: str, services: Services, box: Box) -> None:
    with socket(live_api, box.token) as ws:
        subscribed(ws)
        heard = _publish(services.redis, 2)
        assert [next_event(ws)["id"] for _ in heard] == heard
    # Offline: these are missed, with others' events in between that it must not get.
    someone_else = household(services)
    missed = []
    for n in range(5):
        missed.append(eventlog.publish(services.redis, eventlog.CATALOG, {"n": n}))
        eventlog.publish(services.redis, eventlog.ENTITLEMENTS, {"n": n},
                         account=someone_else.account_id)
        eventlog.publish(services.redis, eventlog.COMMANDS, {"command": "resync"},
                         device=someone_else.device_id, account=someone_else.account_id)
    with socket(live_api, box.token, query=f"after={heard[-1]}") as ws:
        subscribed(ws)
        replayed = [next_event(ws) for _ in missed]
        assert [e["id"] for e in replayed] == missed
        assert [e["data"]["n"] for e in replayed] == list(range(5))
        # ...and then the live ones, with nothing repeated.
        later = _publish(services.redis, 1)
        assert next_event(ws)["id"] == later[0]


def test_sse_last_event_id_gets_what_was_missed(live_api: str, services: Services,
                                                box: Box) -> None:
    before = _publish(services.redis, 1)
    missed = _publish(services.redis, 3)
    with sse(live_api, box.token, headers={"Last-Event-ID": before[0]}) as stream:
        sse_subscribed(stream)
        assert [stream.next()["id"] for _ in missed] == missed


def test_an_offset_the_log_no_longer_holds_gets_resync(live_api: str, services: Services,
                                                      box: Box) -> None:
    old = _publish(services.redis, 3)
    services.redis.xtrim(eventlog.STREAM, maxlen=1, approximate=False)
    with socket(live_api, box.token, query=f"after={old[0]}") as ws:
        start = subscribed(ws)
        resync = next_event(ws)
        assert resync == {"type": "resync", "offset": start["offset"]}
        # Live events follow the resync.
        later = _publish(services.redis, 1)
        assert next_event(ws)["id"] == later[0]
    with sse(live_api, box.token, query=f"after={old[0]}") as stream:
        sse_subscribed(stream)
        message = stream.next()
        assert message["event"] == "resync"
    # The first entry the log still holds is a whole offset: nothing after it is gone.
    newer = _publish(services.redis, 2)
    with socket(live_api, box.token, query=f"after={old[2]}") as ws:
        subscribed(ws)
        assert [next_event(ws)["id"] for _ in later + newer] == later + newer


def test_offset_zero_replays_a_log_never_trimmed(live_api: str, services: Services,
                                                 box: Box) -> None:
    everything = _publish(services.redis, 3)
    with socket(live_api, box.token, query="after=0-0") as ws:
        subscribed(ws)
        assert [next_event(ws)["id"] for _ in everything] == everything


def test_more_missed_than_a_replay_takes_gets_resync(live_api: str, services: Services,
                                                     box: Box, monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    from stb_origin.events import session

    monkeypatch.setattr(session, "MAX_REPLAY", 3)  # the server runs in this process
    first = _publish(services.redis, 1)
    _publish(services.redis, 5)
    with socket(live_api, box.token, query=f"after={first[0]}") as ws:
        subscribed(ws)
        assert next_event(ws)["type"] == "resync"


@pytest.mark.parametrize("offset", ["abc", "1-", "-1", "1-2-3", "1 -2", "9" * 25 + "-0",
                                    "99999999999999-0"])
def test_a_malformed_or_unknown_offset_is_refused(live_api: str, services: Services, box: Box,
                                                  offset: str) -> None:
    _publish(services.redis, 1)
    with socket(live_api, box.token, query=f"after={quote(offset)}") as ws:
        code, reason = closed_with(ws)
    assert code == 4400
    assert reason is not None and reason.startswith("bad_offset:")
    with sse(live_api, box.token, headers={"Last-Event-ID": offset}) as stream:
        assert stream.response.status_code == 400
        assert stream.response.read().startswith(b'{"error":{"code":"bad_offset"')
