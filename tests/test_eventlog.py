"""The event log itself: offsets, what an entry may hold, and publishing that never
fails the publisher's work when Redis is away."""

from __future__ import annotations

import logging

import pytest
from redis import Redis

from stb_origin import eventlog
from stb_origin.assets.announce import asset_changed


@pytest.mark.parametrize("text", ["", "1", "a-1", "1-a", "1-2-3", "-1-0", " 1-0", "1-0\n",
                                  "1" * 20 + "-0", "１-0"])
def test_malformed_offsets_are_refused(text: str) -> None:
    with pytest.raises(eventlog.BadOffset):
        eventlog.parse_offset(text)


def test_offsets_compare_as_numbers() -> None:
    assert eventlog.parse_offset("10-0") > eventlog.parse_offset("9-5")
    assert eventlog.parse_offset("9-10") > eventlog.parse_offset("9-9")


def test_an_entry_names_a_known_topic_and_stays_small() -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        eventlog.encode("nonsense", {})
    with pytest.raises(ValueError, match="payload over"):
        eventlog.encode(eventlog.CATALOG, {"pad": "x" * eventlog.MAX_PAYLOAD_BYTES})
    assert eventlog.encode(eventlog.COMMANDS, {"command": "resync"}, key="d", device="d",
                           account="a") == {"topic": "commands", "data": '{"command":"resync"}',
                                            "key": "d", "account": "a", "device": "d"}


def test_publish_appends_and_trims(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        first = eventlog.publish(redis, eventlog.CATALOG, {"n": 1}, key="t")
        second = eventlog.publish(redis, eventlog.CATALOG, {"n": 2})
        assert first is not None and second is not None
        assert eventlog.parse_offset(second) > eventlog.parse_offset(first)
        [(offset, fields)] = redis.xrange(eventlog.STREAM, count=1)
        assert eventlog.decode(offset, fields) == eventlog.Event(
            first, eventlog.CATALOG, {"n": 1}, key="t")
    finally:
        redis.close()


def test_publishing_while_redis_is_away_is_logged_and_the_caller_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 1.
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    with caplog.at_level(logging.WARNING, "stb_origin.eventlog"):
        assert eventlog.publish(away, eventlog.CATALOG, {}) is None
        asset_changed(away, "a" * 32, "ready", 100)
    assert [r.getMessage() for r in caplog.records] == ["event not published"] * 2
