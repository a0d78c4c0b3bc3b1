"""The key path's one Redis round trip, shared by the requests in flight.

Every key fetch asks Redis the same question: is the token or its device on
the deny-list, what is the device's rate-limit count now, what are the
asset's and the account's change stamps, and (once the account is known, with
a streams limit) may the device take or keep a stream slot (``drm.streams``).
The fetches in flight at the same time ask it together, in ONE command (a Lua
script over all of them): while one batch is on the wire the next gathers. At
one connection a fetch waits for nobody; at 32, one send, one receive and one
reply parsed in C serve them all, where a command or pipeline entry per fetch
cost more in Python than the rest of the fetch (``bench/key_delivery.py``).

Nothing is delayed to make a batch: a batch is whatever arrived while the
previous one was being answered.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError, RedisError

from stb_origin.drm.streams import NO_LIMIT, TAKE_SLOT, StreamLimit, set_name
from stb_origin.queues import connect_async_redis

# ARGV[1]: the rate-limit counter's lifetime, ARGV[2] and [3]: the streams limit
# and idle window; then four per fetch: how many deny-list entries it names, 1 if
# it names an account's stamp, the device taking a stream slot ('' for none) and
# the time in wall-clock seconds. KEYS, per fetch in turn: those deny-list
# entries, the device's rate-limit counter, the asset's stamp, the account's
# stamp (when named), the account's stream set (when a device is named). Answers
# five values per fetch: denied, count, asset stamp, account stamp (a missing
# stamp is false, which Redis sends as nil), 1 if the device may play. A denied
# fetch takes no slot.
CHECKS = TAKE_SLOT + """
local out, k = {}, 1
local limit, idle = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 4 do
  local n = tonumber(ARGV[i])
  local denied = redis.call('EXISTS', unpack(KEYS, k, k + n - 1))
  k = k + n
  local count = redis.call('INCR', KEYS[k])
  if count == 1 then redis.call('EXPIRE', KEYS[k], ARGV[1]) end
  local asset = redis.call('GET', KEYS[k + 1])
  local account = false
  if ARGV[i + 1] == '1' then account = redis.call('GET', KEYS[k + 2]); k = k + 1 end
  k = k + 2
  local plays = 1
  if ARGV[i + 2] ~= '' then
    if denied == 0 then
      plays = take_slot(KEYS[k], ARGV[i + 2], tonumber(ARGV[i + 3]), limit, idle)
    end
    k = k + 1
  end
  out[#out + 1] = denied; out[#out + 1] = count; out[#out + 1] = asset
  out[#out + 1] = account; out[#out + 1] = plays
end
return out
"""
_SHA = hashlib.sha1(CHECKS.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    denied: bool
    count: int
    asset_stamp: bytes | None
    account_stamp: bytes | None
    plays: bool = True  # False: the account's streams are all taken by other boxes


@dataclass(frozen=True)
class Stream:
    """A device asking for a stream slot of its account, at a wall-clock time."""

    account_id: str
    device_id: str
    at: float


@dataclass
class _Call:
    keys: list[str]  # as the script takes them
    has_account: bool
    stream: Stream | None
    answer: asyncio.Future[Answer]


class Checks:
    """``await checks.ask(...)`` from any number of requests of one event loop."""

    # Calls per command at most: bounds the script's run (Redis serves nobody
    # else meanwhile) and the reply.
    MAX_BATCH = 256

    def __init__(self, redis_url: str, counter_ttl_s: int,
                 streams: StreamLimit = NO_LIMIT) -> None:
        self.redis_url = redis_url
        self._counter_ttl_s = counter_ttl_s
        self.streams = streams
        self._redis: AsyncRedis | None = None  # made in the loop that uses it
        self._waiting: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def ask(self, denied: list[str], counter: str, asset_stamp: str,
                  account_stamp: str | None, stream: Stream | None = None) -> Answer:
        """Whether any of the ``denied`` entries exists, the ``counter`` after one
        more hit, the two stamps, and whether ``stream`` got its slot (asked only
        with a streams limit). RedisError when Redis cannot answer."""
        keys = [*denied, counter, asset_stamp]
        if account_stamp is not None:
            keys.append(account_stamp)
        if stream is not None and self.streams.on:
            keys.append(set_name(stream.account_id))
        else:
            stream = None
        loop = asyncio.get_running_loop()
        call = _Call(keys, account_stamp is not None, stream, loop.create_future())
        self._waiting.append(call)
        if self._sender is None:
            self._sender = loop.create_task(self._send())
        return await call.answer

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:self.MAX_BATCH]
                del self._waiting[:self.MAX_BATCH]
                try:
                    found = await self._run(batch)
                except RedisError as exc:
                    for call in batch:
                        if not call.answer.done():
                            call.answer.set_exception(exc)
                    continue
                except BaseException as exc:  # cancelled with the loop: nobody hangs
                    for call in batch:
                        if not call.answer.done():
                            call.answer.set_exception(RedisError(type(exc).__name__))
                    raise
                for i, call in enumerate(batch):
                    if not call.answer.done():  # else the request went away meanwhile
                        denied, count, asset, account, plays = found[5 * i:5 * i + 5]
                        call.answer.set_result(Answer(bool(denied), int(count),
                                                      asset or None, account or None,
                                                      bool(plays)))
        finally:
            self._sender = None

    async def _run(self, batch: list[_Call]) -> list[Any]:
        if self._redis is None:
            self._redis = connect_async_redis(self.redis_url)
        keys: list[str] = []
        args: list[int | str] = [self._counter_ttl_s, self.streams.max_streams,
                                 self.streams.idle_s]
        for call in batch:
            keys.extend(call.keys)
            stream = call.stream
            args.extend((len(call.keys) - 2 - call.has_account - (stream is not None),
                         int(call.has_account), stream.device_id if stream else "",
                         int(stream.at) if stream else 0))
        try:
            found = await self._redis.evalsha(_SHA, len(keys), *keys, *args)
        except NoScriptError:
            # A Redis that restarted or was flushed forgot the script: once more.
            await self._redis.script_load(CHECKS)
            found = await self._redis.evalsha(_SHA, len(keys), *keys, *args)
        return cast(list[Any], found)
