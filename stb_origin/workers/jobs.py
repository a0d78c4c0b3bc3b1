"""RQ job functions: ids in, call the pipeline, nothing else."""

from __future__ import annotations

import functools
import logging
from types import TracebackType
from typing import Any

from stb_origin import pipeline
from stb_origin.assets import records
from stb_origin.observability import metrics
from stb_origin.services import Services, build_services
from stb_origin.settings import from_env

log = logging.getLogger("stb_origin.worker")


@functools.cache
def _services() -> Services:
    # Read once per worker process; RQ imports this module in the work horse.
    return build_services(from_env())


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
    records.mark_failed(_services().db, asset_id, "internal_error",
                         f"processing failed after retries ({exc_type.__name__})")
