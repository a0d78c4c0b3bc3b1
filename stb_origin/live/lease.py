"""Which runner runs a channel: a lease in Redis, and a fencing token in the database.

The lease (``stb:live:lease:{channel}``, holding the runner's id) expires unless
renewed, so a runner that dies loses its channels within ``ttl_s``. Claiming
also bumps the channel's ``epoch`` in the database; every write a run makes
(segment rows, status) requires the epoch it was given, so a run that lost its
lease (a paused process, a Redis that forgot) can write nothing once another
runner has claimed the channel, whatever it still believes.

Runners also announce themselves (``stb:live:runners``, a sorted set of expiry
times) so that each can take a fair share: ceil(channels / live runners).
"""

from __future__ import annotations

import math
import time

from redis import Redis
from sqlalchemy import update

from stb_origin.assets.channels import Channel, ChannelStatus
from stb_origin.db import Database

PREFIX = "stb:live:lease:"
RUNNERS = "stb:live:runners"

# Every lease of the runner in one round trip: the positions (from 1) of those it
# no longer holds.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then
    redis.call('pexpire', key, ARGV[2])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Leases:
    def __init__(self, redis: Redis, db: Database, runner_id: str, ttl_s: float) -> None:
        self._redis = redis
        self._db = db
        self.runner_id = runner_id
        self.ttl_ms = int(ttl_s * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def claim(self, channel_id: str) -> int | None:
        """The new epoch when this runner now holds the channel; None when another does."""
        if not self._redis.set(PREFIX + channel_id, self.runner_id, nx=True, px=self.ttl_ms):
            return None
        with self._db.session() as session:
            epoch = session.scalar(
                update(Channel).where(Channel.id == channel_id)
                .values(epoch=Channel.epoch + 1, status=ChannelStatus.STARTING.value,
                        error_message=None)
                .returning(Channel.epoch))
        if epoch is None:  # deleted meanwhile
            self.release(channel_id)
        return epoch

    def renew(self, channel_ids: list[str]) -> list[str]:
        """Renew the leases of these channels; the ones this runner no longer holds."""
        if not channel_ids:
            return []
        lost = self._renew(keys=[PREFIX + c for c in channel_ids],
                           args=[self.runner_id, self.ttl_ms])
        return [channel_ids[int(i) - 1] for i in lost]

    def release(self, channel_id: str) -> None:
        self._release(keys=[PREFIX + channel_id], args=[self.runner_id])

    def holder(self, channel_id: str) -> str | None:
        held = self._redis.get(PREFIX + channel_id)
        return held.decode() if isinstance(held, bytes) else held

    def announce(self) -> None:
        now = time.time()
        pipe = self._redis.pipeline()
        pipe.zadd(RUNNERS, {self.runner_id: now + self.ttl_ms / 1000})
        pipe.zremrangebyscore(RUNNERS, "-inf", now)
        pipe.execute()

    def withdraw(self) -> None:
        self._redis.zrem(RUNNERS, self.runner_id)

    def fair_share(self, channels: int) -> int:
        runners = max(1, int(self._redis.zcount(RUNNERS, time.time(), "+inf")))
        return math.ceil(channels / runners)
