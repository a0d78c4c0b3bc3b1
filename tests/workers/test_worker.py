"""Worker shutdown with a real `stb-origin worker` process, a real job and real ffmpeg.

The job's ffmpeg is paused (SIGSTOP) once it runs, so "mid-job" does not depend
on how fast this machine transcodes; the worker is then signalled as an
orchestrator would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from stb_origin.assets.records import Asset
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.workers.worker import HEARTBEAT_FILE
from tests.conftest import require_tools
from tests.support.media import make_clip

CLI = [sys.executable, "-m", "stb_origin.cli"]
# RQ ignores a repeat signal that comes within a second of the first.
REPEAT_SIGNAL_AFTER_S = 1.3


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("ffmpeg", "ffprobe")
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2, size="426x240")


@pytest.fixture
def workers(settings: Settings) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.to_env()}


def _spawn(workers: list[subprocess.Popen[bytes]], settings: Settings, name: str,
           argv: list[str]) -> subprocess.Popen[bytes]:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "wb") as log:
        process = subprocess.Popen(argv, env=_env(settings), stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL)
    workers.append(process)
    return process


def _logs(settings: Settings) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted((settings.data_dir / "logs").glob("*.log")))


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the ppid follows it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pause_transcode(worker: subprocess.Popen[bytes], settings: Settings) -> int:
    """Wait for the job's ffmpeg (a descendant of the worker) and stop it; its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited early\n" + _logs(settings)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() != "ffmpeg":
                    continue
            except OSError:
                continue
            pid = ancestor = int(entry.name)
            while ancestor not in (worker.pid, 0, 1):
                ancestor = _parent(ancestor) or 0
            if ancestor == worker.pid:
                os.kill(pid, signal.SIGSTOP)
                return pid
        time.sleep(0.05)
    raise AssertionError("the job's ffmpeg never started\n" + _logs(settings))


def _status(services: Services, asset_id: str) -> str:
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset.status


def _queue_asset(services: Services, clip: Path) -> str:
    return str(accept_source(services, clip, ".mp4", "shutdown test", clip.stat().st_size)["id"])


def test_sigterm_lets_the_running_job_finish_and_takes_no_new_one(
        services: Services, settings: Settings, clip: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    first = _queue_asset(services, clip)
    second = _queue_asset(services, clip)
    worker = _spawn(workers, settings, "worker", [*CLI, "worker"])
    ffmpeg = _pause_transcode(worker, settings)
    # What the container probes read (deploy/): touched as the worker took the job.
    heartbeat = settings.data_dir / HEARTBEAT_FILE
    assert time.time() - heartbeat.stat().st_mtime < 60

    worker.send_signal(signal.SIGTERM)
    time.sleep(REPEAT_SIGNAL_AFTER_S)
    assert worker.poll() is None, "warm shutdown waits for the job\n" + _logs(settings)
    os.kill(ffmpeg, signal.SIGCONT)

    assert worker.wait(timeout=120) == 0, _logs(settings)
    assert _status(services, first) == "ready", _logs(settings)
    assert _status(services, second) == "queued"
    assert services.queue.job_ids == [f"pipeline-{second}"]


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
    job_id = f"pipeline-{asset_id}"
    retries = Job.fetch(job_id, connection=services.redis).retries_left
    worker = _spawn(workers, settings, "worker", argv)
    ffmpeg = _pause_transcode(worker, settings)

    assert callable(stop)
    stop(worker)
    worker.wait(timeout=30)
    assert not _alive(ffmpeg), "the job's ffmpeg was left running"

    job = Job.fetch(job_id, connection=services.redis)
    assert job.get_status() == JobStatus.QUEUED, _logs(settings)
    assert services.queue.job_ids == [job_id]
    assert job.retries_left == retries, "an interrupted run is not a failed attempt"
    queue = Queue(settings.queue_name, connection=services.redis)
    assert StartedJobRegistry(queue=queue).count == 0
    assert FailedJobRegistry(queue=queue).count == 0

    after = _spawn(workers, settings, "worker-after", [*CLI, "worker", "--burst"])
    assert after.wait(timeout=120) == 0, _logs(settings)
    assert _status(services, asset_id) == "ready", _logs(settings)
