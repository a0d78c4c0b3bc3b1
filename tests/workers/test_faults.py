"""Faults with real processes: Redis restarted or gone, workers killed with -9.

Every test runs the real `stb-origin serve` (whose reconciler enqueues lost jobs
and retries dead runs) and real `stb-origin worker` processes on real ffmpeg. The
lease and the reconciler's interval are short here (seconds, not a minute) so
that a dead run is noticed quickly; the back-off before a retry is the real one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from stb_origin.ingest.service import accept_source
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.support.http import serve_process
from tests.support.redis_server import PrivateRedis
from tests.support.workers import (
    CLI,
    alive,
    asset_row,
    horse_of,
    kill_tree,
    logs,
    pause_transcode,
    spawn,
)

LEASE_S = 3.0


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """The reconciler on, every second; a run silent for LEASE_S is dead."""
    return settings.with_(reconcile_interval_s=1.0, run_lease_s=LEASE_S)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path / "redis", appendonly=False)
    redis.start()
    yield redis
    redis.stop()


def _queue(services: Services, clip: Path) -> str:
    return str(accept_source(services, clip, ".mp4", "fault", clip.stat().st_size)["id"])


def _wait(what: str, done: Callable[[], bool], settings: Settings, timeout_s: float) -> float:
    """Seconds until done() held; fails with the processes' logs after timeout_s."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s\n" \
            + logs(settings)
        time.sleep(0.2)
    return time.monotonic() - started


def _versions(services: Services, asset_id: str) -> set[str]:
    return {key.split("/")[2] for key in services.storage.list_keys(f"hls/{asset_id}/")
            if key.count("/") > 2}


def test_a_job_lost_with_redis_is_enqueued_again_and_runs_once(
        fast, clip, private_redis, workers):
    settings = fast.with_(redis_url=private_redis.url)
    services = build_services(settings)
    try:
        asset_id = _queue(services, clip)
        private_redis.restart()  # no persistence: the queued job is gone
        assert Redis.from_url(private_redis.url).dbsize() == 0
        with serve_process(settings):
            spawn(workers, settings, "worker", [*CLI, "worker"])
            _wait("ready", lambda: asset_row(services, asset_id).status == "ready",
                  settings, 120)
        asset = asset_row(services, asset_id)
        assert (asset.attempt, asset.run) == (1, 1), "one attempt, one run"
        assert _versions(services, asset_id) == {asset.version}
    finally:
        services.close()


def test_a_worker_killed_with_its_tree_is_retried_within_two_minutes(
        fast, services, clip, workers):
    asset_id = _queue(services, clip)
    with serve_process(fast) as (_server, base_url):
        first = spawn(workers, fast, "worker-1", [*CLI, "worker"])
        pause_transcode(first, fast)
        killed = time.monotonic()
        kill_tree(first)
        time.sleep(5)
        spawn(workers, fast, "worker-2", [*CLI, "worker"])

        # The asset says it is being retried: which attempt, and when.
        token = services.signer.issue(["assets:read"])

        def shown() -> dict[str, object]:
            response = httpx.get(f"{base_url}/v1/assets/{asset_id}", timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
            return dict(response.json())

        _wait("attempt 2 announced", lambda: shown()["attempt"] == 2, fast, 60)
        body = shown()
        if body["status"] == "queued":
            assert body["next_attempt_at"] is not None
            assert body["error"] == {"code": "worker_lost", "message": (
                "the worker running this attempt stopped (killed or crashed)")}
        _wait("retry running", lambda: asset_row(services, asset_id).run == 2, fast, 120)
        retried_after = time.monotonic() - killed
        _wait("ready", lambda: asset_row(services, asset_id).status == "ready", fast, 120)
    assert retried_after <= 120, f"retried {retried_after:.0f} s after the worker died"
    asset = asset_row(services, asset_id)
    assert (asset.attempt, asset.run, asset.progress) == (2, 2, 100)
    assert _versions(services, asset_id) == {asset.version}, "only the retry published"
    assert not list(fast.work_dir.glob(f"{asset_id}-*")), "the dead run's work dir is swept"


def test_a_killed_main_process_takes_its_run_and_ffmpeg_with_it(fast, services, clip, workers):
    asset_id = _queue(services, clip)
    first = spawn(workers, fast, "worker-1", [*CLI, "worker"])
    ffmpeg = pause_transcode(first, fast)
    horse = horse_of(first, ffmpeg)
    os.kill(first.pid, signal.SIGKILL)  # the main process only
    first.wait()
    _wait("the horse and ffmpeg end", lambda: not alive(horse) and not alive(ffmpeg), fast, 10)

    with serve_process(fast):
        spawn(workers, fast, "worker-2", [*CLI, "worker"])
        _wait("ready", lambda: asset_row(services, asset_id).status == "ready", fast, 120)
        time.sleep(2 * LEASE_S)  # nothing else publishes or writes progress later
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.progress, asset.run) == ("ready", 100, 2)
    assert _versions(services, asset_id) == {asset.version}, "one run published"


def test_a_worker_rides_out_a_redis_outage(settings, clip, tmp_path, workers):
    redis = PrivateRedis(tmp_path / "redis", appendonly=True)  # as dev, compose and k8s run it
    redis.start()
    settings = settings.with_(redis_url=redis.url)
    services = build_services(settings)
    try:
        first = _queue(services, clip)
        worker = spawn(workers, settings, "worker", [*CLI, "worker"])
        ffmpeg = pause_transcode(worker, settings)
        redis.stop()
        os.kill(ffmpeg, signal.SIGCONT)  # the job finishes while Redis is down
        _wait("first ready", lambda: asset_row(services, first).status == "ready",
              settings, 120)
        time.sleep(8)
        assert worker.poll() is None, "the worker quit on the outage\n" + logs(settings)
        redis.start()
        second = _queue(services, clip)
        _wait("second ready", lambda: asset_row(services, second).status == "ready",
              settings, 120)
        assert worker.poll() is None
        assert "starting again" in logs(settings)
    finally:
        services.close()
        redis.stop()


def test_the_worker_runs_no_scheduler_and_no_child_while_idle(settings, services, workers):
    worker = spawn(workers, settings, "worker", [*CLI, "worker"])
    heartbeat = settings.data_dir / "worker.heartbeat"
    _wait("worker up", heartbeat.exists, settings, 30)
    time.sleep(1)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert children == [], "no scheduler (or other) child process"
    assert not list(services.redis.scan_iter("rq:scheduler*"))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def test_health_and_metrics_say_when_jobs_wait_for_no_worker(api, services, clip):
    _queue(services, clip)
    ready = httpx.get(f"{api}/readyz", timeout=10).json()
    assert ready["pipeline"] == {"queued": 1, "workers": 0, "stalled": True}
    metrics = httpx.get(f"{api}/metrics", timeout=10).text
    queue = services.settings.queue_name
    assert f'stb_queue_jobs{{queue="{queue}",state="queued"}} 1.0' in metrics
    assert f'stb_queue_workers{{queue="{queue}"}} 0.0' in metrics
