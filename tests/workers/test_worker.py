"""Worker shutdown with a real `stb-origin worker` process, a real job and real ffmpeg.

The job's ffmpeg is paused (SIGSTOP) once it runs, so "mid-job" does not depend
on how fast this machine transcodes; the worker is then signalled as an
orchestrator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from stb_origin.ingest.service import accept_source
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.workers.worker import HEARTBEAT_FILE
from tests.support.workers import (
    CLI,
    alive,
    asset_row,
    logs,
    pause_transcode,
    spawn,
)

# RQ ignores a repeat signal that comes within a second of the first.
REPEAT_SIGNAL_AFTER_S = 1.3


def _status(services: Services, asset_id: str) -> str:
    return asset_row(services, asset_id).status


def _queue_asset(services: Services, clip: Path) -> str:
    return str(accept_source(services, clip, ".mp4", "shutdown test", clip.stat().st_size)["id"])


def test_sigterm_lets_the_running_job_finish_and_takes_no_new_one(
        services: Services, settings: Settings, clip: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    first = _queue_asset(services, clip)
    second = _queue_asset(services, clip)
    worker = spawn(workers, settings, "worker", [*CLI, "worker"])
    ffmpeg = pause_transcode(worker, settings)
    # What the container probes read (deploy/): touched as the worker took the job.
    heartbeat = settings.data_dir / HEARTBEAT_FILE
    assert time.time() - heartbeat.stat().st_mtime < 60

    worker.send_signal(signal.SIGTERM)
    time.sleep(REPEAT_SIGNAL_AFTER_S)
    assert worker.poll() is None, "warm shutdown waits for the job\n" + logs(settings)
    os.kill(ffmpeg, signal.SIGCONT)

    assert worker.wait(timeout=120) == 0, logs(settings)
    assert _status(services, first) == "ready", logs(settings)
    assert _status(services, second) == "queued"
    assert services.queue.job_ids == [f"pipeline-{second}-1"]


def _cold_stop_by_second_signal(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    time.sleep(REPEAT_SIGNAL_AFTER_S)
    worker.send_signal(signal.SIGTERM)


def _cold_stop_by_grace_running_out(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)


# The same worker with a 2 s grace period (STB_WORKER_GRACE_S, read by the CLI).
GRACE_WORKER = ["env", "STB_WORKER_GRACE_S=2", *CLI, "worker"]


@pytest.mark.parametrize(("argv", "stop"), [
    pytest.param([*CLI, "worker"], _cold_stop_by_second_signal, id="second-signal"),
    pytest.param(GRACE_WORKER, _cold_stop_by_grace_running_out, id="grace-runs-out"),
])
def test_cold_shutdown_requeues_the_job_and_the_next_worker_finishes_it(
        services: Services, settings: Settings, clip: Path,
        workers: list[subprocess.Popen[bytes]], argv: list[str], stop: object) -> None:
    asset_id = _queue_asset(services, clip)
    job_id = f"pipeline-{asset_id}-1"
    worker = spawn(workers, settings, "worker", argv)
    ffmpeg = pause_transcode(worker, settings)
    assert asset_row(services, asset_id).status == "processing"
    assert list(settings.work_dir.glob(f"{asset_id}-*")), "the run's work dir"

    assert callable(stop)
    stop(worker)
    worker.wait(timeout=30)
    assert not alive(ffmpeg), "the job's ffmpeg was left running"

    job = Job.fetch(job_id, connection=services.redis)
    assert job.get_status() == JobStatus.QUEUED, logs(settings)
    assert services.queue.job_ids == [job_id]
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.progress, asset.attempt) == ("queued", 0, 1), \
        "an interrupted run is not a failed attempt, and the API says queued again"
    assert not list(settings.work_dir.glob(f"{asset_id}-*")), "its work dir went with it"
    queue = Queue(settings.queue_name, connection=services.redis)
    assert StartedJobRegistry(queue=queue).count == 0
    assert FailedJobRegistry(queue=queue).count == 0

    after = spawn(workers, settings, "worker-after", [*CLI, "worker", "--burst"])
    assert after.wait(timeout=120) == 0, logs(settings)
    assert _status(services, asset_id) == "ready", logs(settings)
