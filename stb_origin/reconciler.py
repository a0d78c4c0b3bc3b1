"""The reconciler: every few seconds, makes the queue and storage agree with the database.

The database says what must happen to each asset; Redis only carries jobs, and
jobs get lost (a Redis restarted without persistence, an enqueue that failed,
a worker killed with its job). One pass, run by one server process at a time
(a leader key in Redis, one per queue), does three things:

1. **Lost or due jobs.** A ``queued`` asset whose attempt is due and whose job
   is not waiting or running in RQ gets it enqueued (the job id names the
   attempt, so enqueuing twice is harmless, and a run claims its asset before
   working: ``assets.runs``).
2. **Dead runs.** A ``processing`` asset whose run has not renewed its lease
   for ``run_lease_s`` was being run by a worker that died: the attempt counts
   as failed (cause ``worker_lost``), and the next one is due after its back-off.
3. **Retired versions.** A ``ready`` asset past ``prune_after`` loses the
   versions (and their keys) that the current one replaced, once no player or
   CDN can still hold them; its master is pointed at the current version again
   first, in case a stalled, superseded run overwrote it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import anyio
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import Table, and_, or_, select, update

from stb_origin.assets import runs
from stb_origin.assets.records import Asset, Status
from stb_origin.db import stamps
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore
from stb_origin.packager.publish import point_master_at, prune_old_versions
from stb_origin.queues import enqueue_pipeline, pipeline_job_id
from stb_origin.services import Services

log = logging.getLogger("stb_origin.reconciler")

# A new upload is enqueued by the request that made it, a moment after its
# record: the reconciler takes it for lost after this many passes.
FRESH_PASSES = 3
BATCH = 200
_WAITING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
_C = cast(Table, Asset.__table__).c
# Lead if nobody does, or renew if we do: one round trip, no race between the two.
_LEAD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


@dataclass
class Pass:
    """What one pass did."""

    led: bool = False
    enqueued: int = 0
    retried: int = 0
    pruned: int = 0


class Reconciler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._name = secrets.token_hex(8)
        self._lead = services.redis.register_script(_LEAD)

    def run_once(self, now: datetime | None = None) -> Pass:
        now = now or utcnow()
        done = Pass()
        # Kept for three passes: a leader that stopped is replaced within that.
        lead_ms = int(max(self.services.settings.reconcile_interval_s, 1.0) * 3000)
        leader_key = f"stb:reconciler:{self.services.settings.queue_name}"
        if not self._lead(keys=[leader_key], args=[self._name, lead_ms]):
            return done
        done.led = True
        done.retried = self._retry_dead_runs(now)
        done.enqueued = self._enqueue_due(now)
        done.pruned = self._prune_retired(now)
        if done.enqueued or done.retried or done.pruned:
            log.info("reconciled", extra={"enqueued": done.enqueued, "retried": done.retried,
                                          "pruned": done.pruned})
        return done

    async def watch(self) -> None:
        """Pass after pass until cancelled; an outage is logged once, not every pass."""
        failing = False
        while True:
            try:
                await anyio.to_thread.run_sync(self.run_once)
            except Exception as exc:  # Redis, the database or storage away: next pass
                if not failing:
                    log.warning("reconciler pass failed; retrying",
                                extra={"error": type(exc).__name__})
                failing = True
            else:
                if failing:
                    log.info("reconciler passes work again")
                failing = False
            await anyio.sleep(self.services.settings.reconcile_interval_s)

    def _enqueue_due(self, now: datetime) -> int:
        due = or_(and_(_C.next_attempt_at.is_not(None), _C.next_attempt_at <= now),
                  and_(_C.next_attempt_at.is_(None), _C.updated_at < now - timedelta(
                      seconds=FRESH_PASSES * self.services.settings.reconcile_interval_s)))
        with self.services.db.session() as session:
            rows = session.execute(select(_C.id, _C.attempt)
                                   .where(_C.status == Status.QUEUED.value, due)
                                   .order_by(_C.updated_at).limit(BATCH)).all()
        enqueued = 0
        for asset_id, attempt in rows:
            if self._job_waiting(pipeline_job_id(asset_id, attempt)):
                continue
            enqueue_pipeline(self.services.queue, self.services.settings, asset_id, attempt)
            log.info("job enqueued", extra={"asset_id": asset_id, "attempt": attempt})
            enqueued += 1
        return enqueued

    def _job_waiting(self, job_id: str) -> bool:
        try:
            job = Job.fetch(job_id, connection=self.services.redis)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in _WAITING

    def _retry_dead_runs(self, now: datetime) -> int:
        settings = self.services.settings
        lapsed = now - timedelta(seconds=settings.run_lease_s)
        with self.services.db.session() as session:
            dead = session.scalars(select(_C.id).where(
                _C.status == Status.PROCESSING.value,
                or_(_C.heartbeat_at.is_(None), _C.heartbeat_at < lapsed)).limit(BATCH)).all()
        retried = 0
        for asset_id in dead:
            status = runs.retry_or_fail(
                self.services.db, asset_id, "worker_lost",
                "the worker running this attempt stopped (killed or crashed)",
                settings.job_retries + 1, lapsed_before=lapsed, now=now)
            retried += status is not None
        return retried

    def _prune_retired(self, now: datetime) -> int:
        services = self.services
        with services.db.session() as session:
            rows = session.execute(select(_C.id, _C.version).where(
                _C.status == Status.READY.value, _C.prune_after <= now).limit(BATCH)).all()
        for asset_id, version in rows:
            point_master_at(services.storage, asset_id, version)
            gone = prune_old_versions(services.storage, asset_id, version)
            with services.db.session() as session:
                keystore.delete_other_versions(session, asset_id, version)
                session.execute(update(cast(Table, Asset.__table__))
                                .where(_C.id == asset_id, _C.version == version)
                                .values(prune_after=None))
            # Committed: key servers drop their copies of the keys just deleted.
            stamps.renew(services.redis, stamps.asset(asset_id))
            log.info("old versions pruned", extra={"asset_id": asset_id, "versions": gone})
        return len(rows)
