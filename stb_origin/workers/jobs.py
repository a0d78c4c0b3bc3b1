"""RQ job functions: ids in, call the pipeline, nothing else."""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any

from stb_origin import chunked, pipeline
from stb_origin.assets import runs
from stb_origin.assets.causes import failure_cause
from stb_origin.assets.records import Status
from stb_origin.db import Database
from stb_origin.live import clips
from stb_origin.observability import metrics
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.webhooks import attempt

# The settings the worker process was started with (``use_settings``, called by
# run_worker); the work horses RQ forks inherit them.
_settings: Settings | None = None


def use_settings(settings: Settings | None) -> None:
    """Make the job functions in this process run with these settings (None: none)."""
    global _settings
    if _services.cache_info().currsize:
        _services().close()
    _services.cache_clear()
    _settings = settings


@functools.cache
def _services() -> Services:
    if _settings is None:
        raise RuntimeError("no settings for the job functions: run_worker (or a test)"
                           " calls workers.jobs.use_settings first")
    return build_services(_settings)


def process_asset(asset_id: str) -> str:
    """An uploaded master through the pipeline, or a live-to-VOD clip (``live.clips``):
    one job function, so the reconciler and retries treat both alike."""
    services = _services()
    return pipeline.process(services, asset_id, clips.body_for(services, asset_id))


def help_with_spans(asset_id: str, token: int) -> int:
    return chunked.help_with_spans(_services(), asset_id, token)


def send_webhook(delivery_id: str, number: int) -> str:
    return attempt.run(_services(), delivery_id, number)


def on_pipeline_failure(job: Any, connection: Any, exc_type: type[BaseException],
                        exc: BaseException, _tb: TracebackType | None) -> None:
    """Called by RQ when an attempt ended without the pipeline's own answer: its
    work horse was killed (time-out, out of memory) or the run could not start.
    The pipeline turns every other failure into the next attempt itself."""
    asset_id = job.args[0]
    settings = _settings
    assert settings is not None, "run_worker calls use_settings first"
    pipeline.remove_work_dirs(settings, asset_id)  # a killed horse left it
    # Called in the worker's main process, which forks the next horses: a
    # database of its own, closed again, so no horse inherits its connections.
    db = Database(settings.resolved_database_url)
    try:
        status = runs.retry_or_fail(db, asset_id, *failure_cause(exc),
                                    settings.job_retries + 1)
    finally:
        db.dispose()
    if status == Status.FAILED.value:
        metrics.JOB_FINAL_FAILURES.inc(connection)
