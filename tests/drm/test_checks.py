"""The key path's Redis round trip: many fetches in flight share one command, and
each still gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from stb_origin.drm.checks import Answer, Checks, Stream
from stb_origin.drm.streams import StreamLimit, set_name


def _ask_many(checks: Checks, calls: list[tuple[Any, ...]]) -> list[Answer]:
    async def run() -> list[Answer]:
        try:
            return await asyncio.gather(*(checks.ask(*call) for call in calls))
        finally:
            await checks.aclose()
    return asyncio.run(run())


def test_fetches_in_flight_together_each_get_their_own_answer(redis_url):
    redis = Redis.from_url(redis_url)
    redis.set("deny:7", "1")
    redis.set("asset:a", "stamp-a")
    redis.set("account:x", "stamp-x")
    redis.set("counter:3", 41)
    calls = [([f"deny:{i}"] + ([f"deny-device:{i}"] if i % 2 else []), f"counter:{i}",
              "asset:a" if i % 3 else "asset:none", "account:x" if i % 4 == 0 else None)
             for i in range(40)]
    sent: list[int] = []
    checks = Checks(redis_url, counter_ttl_s=61)
    original = checks._run

    async def counting(batch):  # type: ignore[no-untyped-def]
        sent.append(len(batch))
        return await original(batch)

    checks._run = counting  # type: ignore[method-assign]
    answers = _ask_many(checks, calls)

    assert len(sent) < len(calls), f"one command per fetch, not per batch: {sent}"
    for i, answer in enumerate(answers):
        assert answer.denied == (i == 7)
        assert answer.count == (42 if i == 3 else 1)
        assert answer.asset_stamp == (b"stamp-a" if i % 3 else None)
        assert answer.account_stamp == (b"stamp-x" if i % 4 == 0 else None)
    # A counter lives one window and a second, however it was first counted.
    assert 0 < redis.ttl("counter:5") <= 61


def test_a_redis_that_forgot_the_script_is_taught_it_again(redis_url):
    checks = Checks(redis_url, counter_ttl_s=61)
    Redis.from_url(redis_url).script_flush()
    [answer] = _ask_many(checks, [(["deny:none"], "counter:flush", "asset:none", None)])
    assert answer == Answer(False, 1, None, None)


def test_every_waiting_fetch_hears_that_redis_cannot_answer():
    checks = Checks("redis://127.0.0.1:1/0", counter_ttl_s=61)  # nobody listens there

    async def run() -> list[object]:
        return await asyncio.gather(
            *(checks.ask(["deny:a"], f"counter:{i}", "asset:a", None) for i in range(5)),
            return_exceptions=True)

    found = asyncio.run(run())
    assert all(isinstance(answer, RedisError) for answer in found), found


def test_stream_slots_are_taken_in_the_same_command(redis_url):
    redis = Redis.from_url(redis_url)
    redis.set("deny:revoked", "1")
    checks = Checks(redis_url, counter_ttl_s=61, streams=StreamLimit(2, idle_s=300))
    calls = [
        # A denied fetch takes no slot; the first two others of the account do.
        (["deny:revoked"], "counter:0", "asset:a", "account:x", Stream("x", "box-0", 1000)),
        (["deny:1"], "counter:1", "asset:a", "account:x", Stream("x", "box-1", 1000)),
        (["deny:2"], "counter:2", "asset:a", "account:x", Stream("x", "box-2", 1000)),
        (["deny:3"], "counter:3", "asset:a", "account:x", Stream("x", "box-3", 1000)),
        (["deny:4"], "counter:4", "asset:a", "account:y", Stream("y", "box-4", 1000)),
        # No stream named (the first fetch of a user): no slot asked.
        (["deny:5"], "counter:5", "asset:a", None, None),
    ]

    async def run() -> list[Answer]:
        try:
            return await asyncio.gather(*(checks.ask(*call) for call in calls))
        finally:
            await checks.aclose()

    answers = asyncio.run(run())
    assert [answer.plays for answer in answers] == [True, True, True, False, True, True]
    assert answers[0].denied
    assert {m.decode() for m in redis.zrange(set_name("x"), 0, -1)} == {"box-1", "box-2"}
    assert 0 < redis.ttl(set_name("x")) <= 300
    # Past the idle window, the old entries no longer count.
    [later] = _ask_many(Checks(redis_url, 61, StreamLimit(2, idle_s=300)), [
        (["deny:3"], "counter:3", "asset:a", "account:x", Stream("x", "box-3", 1301))])
    assert later.plays
    assert [m.decode() for m in redis.zrange(set_name("x"), 0, -1)] == ["box-3"]


def test_a_zero_limit_asks_for_no_slot(redis_url):
    checks = Checks(redis_url, counter_ttl_s=61)
    [answer] = _ask_many(checks, [(["deny:a"], "counter:a", "asset:a", "account:x",
                                   Stream("x", "box", 1000))])
    assert answer.plays
    assert not Redis.from_url(redis_url).exists(set_name("x"))
