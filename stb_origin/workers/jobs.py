"""RQ job functions: ids in, call the pipeline, nothing else."""

from __future__ import annotations

import functools
import logging
from types import TracebackType
from typing import Any

from stb_origin import pipeline
from stb_origin.assets import records
from stb_origin.assets.causes import failure_cause
from stb_origin.observability import metrics
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings

log = logging.getLogger("stb_origin.worker")

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
    return pipeline.process(_services(), asset_id)


def on_pipeline_failure(job: Any, connection: Any, exc_type: type[BaseException],
                        exc: BaseException, _tb: TracebackType | None) -> None:
    """Called by RQ after every failed attempt; only the last one fails the asset."""
    asset_id = job.args[0]
    if job.retries_left:
        log.warning("pipeline attempt failed, will retry",
                    extra={"asset_id": asset_id, "error": exc_type.__name__})
        return
    metrics.JOB_FINAL_FAILURES.inc(connection)
    records.mark_failed(_services().db, asset_id, *failure_cause(exc))
