"""RQ queues and how a pipeline job is enqueued (time-out, retries with back-off)."""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Callback, Queue
from rq.job import Job

from stb_origin.settings import Settings

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


def pipeline_job_id(asset_id: str, attempt: int) -> str:
    """The RQ job of one attempt of an asset: enqueuing it again is harmless."""
    return f"pipeline-{asset_id}-{attempt}"


def enqueue_pipeline(queue: Queue, settings: Settings, asset_id: str, attempt: int = 1) -> Job:
    """Queue an attempt. RQ retries nothing itself: a failed attempt is turned into
    the next one, with its back-off, by ``assets.runs`` and the reconciler."""
    return queue.enqueue(
        "stb_origin.workers.jobs.process_asset",
        asset_id,
        job_id=pipeline_job_id(asset_id, attempt),
        job_timeout=int(settings.transcode_timeout_s + 900),
        on_failure=Callback("stb_origin.workers.jobs.on_pipeline_failure"),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )


def webhook_queue(redis: Redis, settings: Settings) -> Queue:
    """Webhook attempts: short jobs, which workers take before pipeline jobs. Named
    after the pipeline queue, so that deployments sharing a Redis stay apart."""
    return Queue(f"{settings.queue_name}-webhooks", connection=redis)


def enqueue_webhook(queue: Queue, delivery_id: str, attempt: int, timeout_s: float) -> Job:
    """Queue one attempt of a delivery; the job id names the attempt."""
    return queue.enqueue(
        "stb_origin.workers.jobs.send_webhook",
        delivery_id, attempt,
        job_id=f"webhook-{delivery_id}-{attempt}",
        job_timeout=int(timeout_s) + 30,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )
