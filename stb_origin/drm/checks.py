"""The key path's one Redis round trip, shared by the requests in flight.

Every key fetch asks Redis the same question: is the token or its device on
the deny-list, what is the device's rate-limit count now, and what are the
asset's and the account's change stamps. The fetches in flight at the same
time ask it together, in ONE command (a Lua script over all of them): while one
batch is on the wire the next gathers. At one connection a fetch waits for
nobody; at 32, one send, one receive and one reply parsed in C serve them all,
where a command or pipeline entry per fetch cost more in Python than the rest
of the fetch (``bench/key_delivery.py``).

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

from stb_origin.queues import connect_async_redis

# ARGV[1]: the rate-limit counter's lifetime; then two per fetch: how many
# deny-list entries it names, and 1 if it names an account's stamp. KEYS, per
# fetch in turn: those deny-list entries, the device's rate-limit counter, the
# asset's stamp, the account's stamp (when named). Answers four values per
# fetch: denied, count, asset stamp, account stamp (a missing stamp is false,
# which Redis sends as nil).
CHECKS = """
local out, k = {}, 1
for i = 2, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  local denied = redis.call('EXISTS', unpack(KEYS, k, k + n - 1))
  k = k + n
  local count = redis.call('INCR', KEYS[k])
  if count == 1 then redis.call('EXPIRE', KEYS[k], ARGV[1]) end
  local asset = redis.call('GET', KEYS[k + 1])
  local account = false
  if ARGV[i + 1] == '1' then account = redis.call('GET', KEYS[k + 2]); k = k + 1 end
  k = k + 2
  out[#out + 1] = denied; out[#out + 1] = count; out[#out + 1] = asset
  out[#out + 1] = account
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


@dataclass
class _Call:
    keys: list[str]  # as the script takes them
    has_account: bool
    answer: asyncio.Future[Answer]


class Checks:
    """``await checks.ask(...)`` from any number of requests of one event loop."""

    # Calls per command at most: bounds the script's run (Redis serves nobody
    # else meanwhile) and the reply.
    MAX_BATCH = 256

    def __init__(self, redis_url: str, counter_ttl_s: int) -> None:
        self.redis_url = redis_url
        self._counter_ttl_s = counter_ttl_s
        self._redis: AsyncRedis | None = None  # made in the loop that uses it
        self._waiting: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def ask(self, denied: list[str], counter: str, asset_stamp: str,
                  account_stamp: str | None) -> Answer:
        """Whether any of the ``denied`` entries exists, the ``counter`` after one
        more hit, and the two stamps. RedisError when Redis cannot answer."""
        keys = [*denied, counter, asset_stamp]
        if account_stamp is not None:
            keys.append(account_stamp)
        loop = asyncio.get_running_loop()
        call = _Call(keys, account_stamp is not None, loop.create_future())
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
                        denied, count, asset, account = found[4 * i:4 * i + 4]
                        call.answer.set_result(Answer(bool(denied), int(count),
                                                      asset or None, account or None))
        finally:
            self._sender = None

    async def _run(self, batch: list[_Call]) -> list[Any]:
        if self._redis is None:
            self._redis = connect_async_redis(self.redis_url)
        keys: list[str] = []
        args: list[int] = [self._counter_ttl_s]
        for call in batch:
            keys.extend(call.keys)
            args.extend((len(call.keys) - 2 - call.has_account, int(call.has_account)))
        try:
            found = await self._redis.evalsha(_SHA, len(keys), *keys, *args)
        except NoScriptError:
            # A Redis that restarted or was flushed forgot the script: once more.
            await self._redis.script_load(CHECKS)
            found = await self._redis.evalsha(_SHA, len(keys), *keys, *args)
        return cast(list[Any], found)
