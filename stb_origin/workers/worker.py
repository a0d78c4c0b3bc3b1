"""The worker entry point: a real RQ worker on the pipeline queue.

Shutdown never loses a job. The first SIGTERM (or Ctrl-C) is RQ's warm shutdown:
take no new job, let the current one finish. A second signal, or the grace
period running out first, kills the job's work horse (its process group, ffmpeg
included), puts the job back at the front of its queue as it was, the asset
back to ``queued`` on the same attempt, and removes the run's work dir. A
re-run is safe: a run holds its asset by a fenced lease (``assets.runs``) and
publishes under a fresh version prefix.

A worker killed outright (``kill -9``) takes its work horse and ffmpeg with it
(the kernel's parent-death signal): no orphan run goes on beside the retry the
reconciler starts once the dead run's lease lapses. RQ runs no scheduler here:
retries are attempts in the database, enqueued by the reconciler when due.

Redis going away ends RQ's loop ("unhandled exception, quitting"): the worker
starts a new one, with back-off, until Redis answers or it is told to stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Worker
from rq.executions import Execution
from rq.job import JobStatus

from stb_origin import pipeline, proc
from stb_origin.assets import runs
from stb_origin.db import Database
from stb_origin.queues import connect_redis, pipeline_queue, webhook_queue
from stb_origin.settings import Settings
from stb_origin.webhooks import attempt as webhook_attempt

# Imported here, before RQ forks a work horse per job, so no job pays for
# importing the pipeline (about 0.5 s, bench/pipeline_overhead.py).
from stb_origin.workers import jobs

log = logging.getLogger("stb_origin.worker")

# Touched on every turn of the worker's loop (at least every 405 s idle, every 30 s
# busy, whether or not Redis answers): the container probes in deploy/ read its age.
HEARTBEAT_FILE = "worker.heartbeat"
# How long a stopping worker waits for its pubsub thread, which closes its connection.
PUBSUB_STOP_S = 2.0
# Seconds between attempts to start again after RQ's loop ended on an error.
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class RequeueingWorker(Worker):
    """An RQ worker whose cold shutdown requeues the job it was running."""

    def __init__(self, *args: Any, settings: Settings,
                 heartbeat_path: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.grace_s = settings.worker_grace_s
        self.heartbeat_path = heartbeat_path
        self._grace_timer: threading.Timer | None = None
        self._main_pid = os.getpid()
        self.told_to_stop = False  # RQ only records it when a job runs

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.told_to_stop = True
        super().request_stop(signum, frame)

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        # In the forked horse, first: die with the worker, however it dies.
        proc.die_with(self._main_pid)
        super().main_work_horse(*args, **kwargs)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if self.heartbeat_path is not None:
            self.heartbeat_path.touch()
        super().heartbeat(timeout, pipeline)

    def unsubscribe(self) -> None:
        # RQ unsubscribes, then stops the pubsub thread, and redis-py's stop() waits
        # for that thread: when it has already read the unsubscribe reply it sits in
        # get_message for RQ's 60 s sleep, and the worker's exit with it (seen as
        # workers outliving their stop). Clear its flag first; the reply then wakes
        # it to exit. A daemon thread still reading a dead Redis ends with us.
        thread = self.pubsub_thread
        if thread is None:
            return
        self.log.info("Worker %s: unsubscribing from channel %s", self.name,
                      self.pubsub_channel_name)
        thread.stop(timeout=0)
        with contextlib.suppress(RedisError):
            self.pubsub.unsubscribe()
        thread.join(timeout=PUBSUB_STOP_S)

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid and self._grace_timer is None:
            # The grace running out acts as the second signal. It goes to the main
            # thread, which is the one waiting for the horse (and running handlers).
            main = threading.main_thread().ident
            assert main is not None
            # RQ ignores a repeat signal that comes within a second of the first.
            self._grace_timer = threading.Timer(max(self.grace_s, 1.5), signal.pthread_kill,
                                                (main, signal.SIGTERM))
            self._grace_timer.daemon = True
            self._grace_timer.start()

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        execution = self.execution if self.horse_pid else None
        try:
            # Kills and reaps the horse, then raises SystemExit (or ignores a signal
            # that came within a second of the first one).
            super().request_force_stop(signum, frame)
        except SystemExit:
            if execution is not None:
                self._requeue(execution)
            raise

    def _requeue(self, execution: Execution) -> None:
        job = self.job_class.fetch(execution.job_id, connection=self.connection,
                                   serializer=self.serializer)
        # The horse is dead and reaped: if it got as far as recording an outcome
        # (finished, failed, scheduled for retry), that outcome stands.
        if job.get_status(refresh=True) != JobStatus.STARTED:
            return
        queue = self.queue_class(job.origin, connection=self.connection,
                                 serializer=self.serializer)
        # One transaction: the job is never out of both the queue and the started registry.
        with self.connection.pipeline() as pipe:
            pipe.multi()
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        # Requeued is all a webhook attempt needs: the rest is a pipeline run's.
        asset_id = job.args[0] if job.args and job.origin == self.settings.queue_name else None
        if asset_id is not None:
            db = Database(self.settings.resolved_database_url)
            try:
                runs.put_back(db, asset_id)  # the API says queued, not "processing 25"
            finally:
                db.dispose()
            pipeline.remove_work_dirs(self.settings, asset_id)
        log.warning("worker stopped mid-job; job requeued",
                    extra={"job_id": job.id, "asset_id": asset_id})


def run_worker(settings: Settings, burst: bool = False) -> int:
    if settings.redis_url is None:
        raise ValueError("STB_REDIS_URL is not set (`stb-origin dev` starts a Redis itself)")
    redis = connect_redis(settings.redis_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    jobs.use_settings(settings)
    db = Database(settings.resolved_database_url)
    try:
        # What runs killed with their worker left behind (a cold stop removes its own).
        pipeline.sweep_work_dirs(settings, db)
        webhook_attempt.warm_up(db)
    finally:
        db.dispose()
    failures = 0
    while True:
        started = time.monotonic()
        worker: RequeueingWorker | None = None
        # Redis may be away when the worker (which names itself in Redis) is made,
        # or during its teardown.
        with contextlib.suppress(RedisError):
            # Webhook attempts first: seconds each, and a receiver is waiting.
            queues = [webhook_queue(redis, settings), pipeline_queue(redis, settings)]
            worker = RequeueingWorker(queues, connection=redis,
                                      settings=settings,
                                      heartbeat_path=settings.data_dir / HEARTBEAT_FILE)
            worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
        if worker is not None and (burst or worker.told_to_stop):
            return 0
        # RQ's loop ended on an error it does not handle, most often Redis gone.
        failures = 0 if time.monotonic() - started > 60 else failures + 1
        wait = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
        log.warning("worker loop ended (Redis unreachable?); starting again",
                    extra={"retry_in_s": wait})
        if _stopped_within(wait):
            return 0


def _stopped_within(seconds: float) -> bool:
    """Wait, unless SIGTERM or SIGINT comes first (then True)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return stop.wait(seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
