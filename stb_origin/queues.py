"""RQ queues and how a pipeline job is enqueued (time-out, retries with back-off)."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Callback, Queue, Retry
from rq.job import Job

from stb_origin.settings import Settings

# Seconds to wait before each retry of a failed attempt.
RETRY_BACKOFF_S = [15, 60, 240]
REDIS_TIMEOUT_S = 10


def connect_redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S,
                          socket_timeout=REDIS_TIMEOUT_S, health_check_interval=30)


def connect_async_redis(url: str) -> AsyncRedis:
    """The same connection, for code that awaits Redis in the event loop. Create
    it inside the loop that will use it: its connections belong to that loop."""
    return AsyncRedis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S,
                               socket_timeout=REDIS_TIMEOUT_S, health_check_interval=30)


def pipeline_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis)


def enqueue_pipeline(queue: Queue, settings: Settings, asset_id: str) -> Job:
    return queue.enqueue(
        "stb_origin.workers.jobs.process_asset",
        asset_id,
        # One job id per asset and run: re-enqueueing never duplicates a queued job.
        job_id=f"pipeline-{asset_id}",
        job_timeout=int(settings.transcode_timeout_s + 900),
        retry=Retry(max=settings.job_retries, interval=RETRY_BACKOFF_S[: settings.job_retries])
        if settings.job_retries else None,
        on_failure=Callback("stb_origin.workers.jobs.on_pipeline_failure"),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )
