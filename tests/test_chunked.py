"""The chunked path in one process: a long master's spans, stitched, published like
the one-run path publishes it; what the run leaves in Redis and storage afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import m3u8
import pytest
from redis import Redis
from rq import SimpleWorker

from stb_origin import chunked, pipeline
from stb_origin.assets import runs
from stb_origin.assets.records import Asset
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe
from tests.support.media import make_clip

SECONDS = 14


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "long.mp4", seconds=SECONDS,
                     size="426x240", fps="30000/1001")


@pytest.fixture
def chunking(settings: Settings, worker_env: None) -> Iterator[Services]:
    # 2 s segments, 4 s spans: a 14 s master is five spans (4, 2, 2, 2, 4 s).
    services = build_services(settings.with_(chunk_above_s=8, span_seconds=4))
    yield services
    services.close()


def spans_encoded(redis: Redis) -> dict[str, int]:
    counts = redis.hgetall("stb:metrics:stb_spans_encoded_total")
    return {json.loads(k)[0]: int(v) for k, v in counts.items()}


def _process(services: Services, path: Path) -> str:
    asset_id = str(accept_source(services, path, ".mp4", "long", path.stat().st_size)["id"])
    assert pipeline.process(services, asset_id) == "ready"
    return asset_id


def _media_playlists(services: Services, asset_id: str) -> dict[str, list[float]]:
    """Each published track's segment durations, by track name."""
    master = m3u8.loads(services.storage.get_bytes(f"hls/{asset_id}/master.m3u8").decode())
    uris = {p.uri for p in master.playlists} | {m.uri for m in master.media} | \
        {p.uri for p in master.iframe_playlists}
    return {uri.split("/")[-2]: [s.duration for s in m3u8.loads(
        services.storage.get_bytes(f"hls/{asset_id}/{uri}").decode()).segments]
        for uri in uris}


def test_a_long_master_is_published_as_one_run_publishes_it(
        chunking: Services, services: Services, master: Path) -> None:
    chunked = _process(chunking, master)
    assert spans_encoded(chunking.redis) == {"run": 5}
    one_run = _process(services, master)
    assert spans_encoded(services.redis) == {"run": 5}, "the one-run path encodes no span"
    assert _media_playlists(chunking, chunked) == _media_playlists(services, one_run)

    with chunking.db.session() as session:
        asset = session.get(Asset, chunked)
        assert asset is not None and asset.progress == 100
    # Nothing of the spans is left behind: not in storage, not in Redis.
    assert not list(chunking.storage.list_keys(f"spans/{chunked}/"))
    assert not chunking.redis.keys(f"stb:spans:{chunked}:*")


def test_helper_jobs_of_a_finished_run_do_nothing(chunking: Services, master: Path) -> None:
    asset_id = _process(chunking, master)
    helpers = [job for job in chunking.queue.get_jobs() if job.id.startswith("spans-")]
    assert [job.args for job in helpers] == [(asset_id, 1)] * 4  # one per span but its own
    SimpleWorker([chunking.queue], connection=chunking.redis).work(burst=True)
    assert [job.return_value() for job in helpers] == [0] * 4
    assert spans_encoded(chunking.redis) == {"run": 5}


def test_a_helper_that_finds_every_span_taken_fetches_nothing(
        chunking: Services, master: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run queues a helper per span; with fewer workers than spans, most find the
    # list empty, and must not copy a master of gigabytes to learn it.
    asset_id = str(accept_source(chunking, master, ".mp4", "long", master.stat().st_size)["id"])
    run = runs.claim(chunking.db, asset_id, chunking.settings.run_lease_s)
    assert run is not None
    plan = chunked.Plan(asset_id, run.token, run.source_key, plan_ladder(
        probe(master, chunking.settings), chunking.settings), (), "fmp4")
    chunking.redis.set(f"stb:spans:{asset_id}:{run.token}:plan", plan.to_json())
    fetched: list[str] = []
    monkeypatch.setattr(chunking.storage, "download", lambda key, path: fetched.append(key))

    assert chunked.help_with_spans(chunking, asset_id, run.token) == 0
    assert fetched == []
