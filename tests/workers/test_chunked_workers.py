"""A long master's spans across real `stb-origin worker` processes: both workers
encode, and a worker killed mid-span costs that span only."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx
import m3u8
import pytest
from redis import Redis

from stb_origin.ingest.service import accept_source
from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.player import keyframe_times, play
from tests.support.http import serve_process
from tests.support.media import make_clip
from tests.support.workers import CLI, asset_row, kill_tree, logs, pause_transcode, spawn

SECONDS, FPS = 20, 30


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("ffmpeg", "ffprobe")
    return make_clip(tmp_path_factory.mktemp("media") / "long.mp4", seconds=SECONDS,
                     size="640x360", fps=FPS)


@pytest.fixture
def chunking(settings: Settings) -> Settings:
    # 2 s segments, 4 s spans: seven spans (the last two halved). A run or claim
    # silent for 3 s is dead.
    return settings.with_(chunk_above_s=8, span_seconds=4, run_lease_s=3.0)


def _counter(redis: Redis, name: str) -> dict[str, int]:
    counts = redis.hgetall(f"stb:metrics:{name}")
    return {"/".join(json.loads(k)): int(v) for k, v in counts.items()}


def _wait(what: str, done: Callable[[], bool], settings: Settings, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s\n" + logs(settings)
        time.sleep(0.2)


def test_a_helper_killed_mid_span_costs_that_span_only(chunking, services, master, workers):
    asset_id = str(accept_source(services, master, ".mp4", "long",
                                 master.stat().st_size)["id"])
    first = spawn(workers, chunking, "worker-1", [*CLI, "worker"])
    # The run encodes the audio (an hls output, no video filters) before any span:
    # held there, it has taken no span yet.
    audio = pause_transcode(first, chunking, argv_has=["hls"], argv_lacks=["-filter_complex"])
    second = spawn(workers, chunking, "worker-2", [*CLI, "worker"])
    pause_transcode(second, chunking, argv_has=["-filter_complex"])  # a helper, on a span
    kill_tree(second)
    os.kill(audio, signal.SIGCONT)
    _wait("ready", lambda: asset_row(services, asset_id).status == "ready", chunking, 240)

    assert _counter(services.redis, "stb_spans_requeued_total") == {"": 1}
    assert _counter(services.redis, "stb_spans_encoded_total") == {"run": 7}
    asset = asset_row(services, asset_id)
    assert (asset.attempt, asset.run) == (1, 1), "the run itself never stopped"
    assert not list(services.storage.list_keys(f"spans/{asset_id}/"))

    # Every rendition decodes to the master's frames, key frames on the same instants.
    token = services.signer.issue(["playback"], device_id="box-1")
    with serve_process(chunking) as (_server, base_url):
        master_url = f"{base_url}/hls/{asset_id}/master.m3u8"
        variants = m3u8.loads(httpx.get(master_url, timeout=10).text).playlists
        keyframes = []
        for variant in variants:
            url = urljoin(master_url, variant.uri)
            played = play(url, token)
            assert played.returncode == 0 and not played.errors, played.errors
            assert played.video_frames == SECONDS * FPS
            keyframes.append(keyframe_times(url, token))
        assert len(variants) >= 2 and all(k == keyframes[0] for k in keyframes)
        times = keyframes[0]
        assert [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)] == \
            [2.0] * (SECONDS // 2 - 1)


def test_the_next_attempt_after_the_run_died_reuses_the_stored_spans(
        chunking, services, master, workers):
    fast = chunking.with_(reconcile_interval_s=1.0)
    asset_id = str(accept_source(services, master, ".mp4", "long",
                                 master.stat().st_size)["id"])

    def stored() -> int:
        return sum(1 for key in services.storage.list_keys(f"spans/{asset_id}/")
                   if key.endswith("/done"))

    first = spawn(workers, fast, "worker-1", [*CLI, "worker"])
    _wait("two spans stored", lambda: stored() >= 2, fast, 120)
    # Held in its next span: no more are stored.
    pause_transcode(first, fast, argv_has=["-filter_complex"])
    before = stored()
    assert _counter(services.redis, "stb_spans_encoded_total") == {"run": before}
    kill_tree(first)

    with serve_process(fast):
        spawn(workers, fast, "worker-2", [*CLI, "worker"])
        _wait("ready", lambda: asset_row(services, asset_id).status == "ready", fast, 240)
    asset = asset_row(services, asset_id)
    assert (asset.attempt, asset.status) == (2, "ready")
    # Only the spans not stored before the kill were encoded again: by the new run,
    # or by the dead run's helper jobs while its lease had not yet lapsed.
    assert sum(_counter(services.redis, "stb_spans_encoded_total").values()) == 7
    assert not list(services.storage.list_keys(f"spans/{asset_id}/"))
