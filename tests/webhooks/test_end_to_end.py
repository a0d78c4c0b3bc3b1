"""One real path end to end: a master uploaded, transcoded by a real `stb-origin
worker`, the asset turning ready, the server's consumer making the delivery, and
the same worker POSTing it, signed, to the receiver; the worker then stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import ResponseError

from stb_origin import eventlog
from stb_origin.app import create_app
from stb_origin.ingest.service import accept_source
from stb_origin.services import build_services
from stb_origin.settings import Settings
from stb_origin.webhooks.consumer import GROUP
from tests.conftest import require_tools
from tests.support.http import run_server
from tests.support.media import make_clip
from tests.support.workers import CLI, logs, spawn
from tests.webhooks.conftest import Receiver, call, local_settings


def test_a_real_asset_turning_ready_reaches_the_receiver_through_a_real_worker(
        settings: Settings, receiver: Receiver, tmp_path: Path,
        workers: list[subprocess.Popen[bytes]]) -> None:
    require_tools("ffmpeg", "ffprobe")
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, size="426x240")
    # The cheapest real ladder: one codec, no loudness passes, no probe encode.
    settings = local_settings(settings).with_(hevc=False, loudness_normalisation=False,
                                              per_title=False)
    services = build_services(settings)
    try:
        with run_server(create_app(services)) as api:
            _wait_for_the_consumer_group(services.redis)
            made = call(api, "POST", "/v1/webhooks", services.signer.issue(["admin"]),
                        json={"url": receiver.url, "events": ["asset.ready"]}).json()
            receiver.secret = made["secret"]
            asset_id = accept_source(services, clip, ".mp4", "webhook test",
                                     clip.stat().st_size)["id"]
            worker = spawn(workers, settings, "worker", [*CLI, "worker"])

            [got] = receiver.wait(1, timeout_s=180)
            assert got.verified, logs(settings)
            assert got.json["type"] == "asset.ready"
            assert got.json["data"]["asset"] == asset_id
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, logs(settings)

            page = httpx.get(api + "/metrics", timeout=10).text
            assert 'stb_webhook_deliveries_total{outcome="delivered"} 1.0' in page
            queue = f"{settings.queue_name}-webhooks"
            assert f'stb_queue_jobs{{queue="{queue}",state="queued"}} 0.0' in page
            assert 'stb_webhook_backlog{stage="deliveries"} 0.0' in page
            assert 'stb_webhook_backlog{stage="events"} 0.0' in page
    finally:
        services.close()


def _wait_for_the_consumer_group(redis: Redis) -> None:
    """The server's consumer made its group: events from now on reach webhooks."""
    deadline = time.monotonic() + 10
    while True:
        try:
            groups: Any = redis.xinfo_groups(eventlog.STREAM)
        except ResponseError:  # the stream is not there yet
            groups = []
        if any(g["name"] in (GROUP, GROUP.encode()) for g in groups):
            return
        assert time.monotonic() < deadline, "the server started no webhook consumer"
        time.sleep(0.05)
