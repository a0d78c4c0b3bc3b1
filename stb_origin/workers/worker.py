"""The worker entry point: a real RQ worker on the pipeline queue."""

from __future__ import annotations

from rq import Worker

from stb_origin.settings import Settings
from stb_origin.workers.queues import connect_redis, pipeline_queue


def run_worker(settings: Settings, burst: bool = False) -> int:
    if settings.redis_url is None:
        raise ValueError("STB_REDIS_URL is not set (`stb-origin dev` starts a Redis itself)")
    redis = connect_redis(settings.redis_url)
    worker = Worker([pipeline_queue(redis, settings)], connection=redis)
    # The scheduler is what re-enqueues retries after their back-off interval.
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    return 0
