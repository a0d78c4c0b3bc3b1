"""The flow of one asset: probe → plan ladder → transcode → package + encrypt → publish.

Each run publishes under a fresh version prefix with the master playlist last,
so a retried or re-run job ends in the same consistent state and a
half-published asset is never ``ready``.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stb_origin.assets.records import Asset, Status, mark_failed
from stb_origin.db import stamps
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.observability import logs, metrics
from stb_origin.packager.package import VariantInput, count_segments, keys_needed, package
from stb_origin.packager.publish import prune_old_versions, publish
from stb_origin.services import Services
from stb_origin.storage import layout
from stb_origin.transcode import MediaError, plan_ladder, probe, transcode

log = logging.getLogger("stb_origin.pipeline")

# Share of the progress bar that transcoding takes; packaging and publishing the rest.
TRANSCODE_SHARE = 90
PROGRESS_INTERVAL_S = 1.0


def process(services: Services, asset_id: str) -> str:
    """Run the whole pipeline for one asset; returns the final status."""
    # Every line logged during the run, by any module, carries the asset id.
    with logs.context(asset_id=asset_id):
        started = time.perf_counter()
        outcome = "error"  # an exception: RQ retries the job or gives up
        try:
            outcome = _process(services, asset_id)
            return outcome
        finally:
            metrics.JOB_DURATION.observe(services.redis, time.perf_counter() - started,
                                         outcome=outcome)


def _process(services: Services, asset_id: str) -> str:
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            log.warning("asset vanished before processing", extra={"asset_id": asset_id})
            return "deleted"
        source_key = asset.source_key
        asset.status = Status.PROCESSING.value
        asset.progress = 0
        asset.error_code = asset.error_message = None

    work = services.settings.work_dir / f"{asset_id}-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    try:
        return _run(services, asset_id, source_key, work)
    except MediaError as exc:
        # Bad media is final: retrying cannot fix it.
        mark_failed(services.db, asset_id, exc.code, exc.message)
        return Status.FAILED.value
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(services: Services, asset_id: str, source_key: str, work: Path) -> str:
    settings = services.settings
    source_path = work / ("source" + Path(source_key).suffix)
    with _stage(services, "download"):
        services.storage.download(source_key, source_path)

    with _stage(services, "probe"):
        source = probe(source_path, settings)
    ladder = plan_ladder(source, settings)
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return "deleted"
        asset.source = source.to_json()
        asset.duration_s = source.duration_s

    encoded = work / "encoded"
    with _stage(services, "transcode") as took:
        transcode(source_path, source, ladder, encoded, settings,
                  on_progress=_progress_writer(services, asset_id))
    if took.seconds > 0:
        metrics.TRANSCODE_REALTIME_FACTOR.observe(
            services.redis, source.duration_s / took.seconds,
            top_rendition=ladder.renditions[0].name)
    _set_progress(services, asset_id, TRANSCODE_SHARE)  # the throttle may have eaten the last

    version = "v" + secrets.token_hex(6)
    keys = [generate_key() for _ in range(keys_needed(count_segments(encoded),
                                                      settings.key_rotation_segments))]
    # Keys are stored (wrapped) before any playlist that names them is published.
    with services.db.session() as session:
        keystore.store(session, asset_id, keys, services.envelope)

    variants = [VariantInput(r.name, r.width, r.height, ladder.fps) for r in ladder.renditions]
    packaged = work / "packaged"
    with _stage(services, "package"):
        result = package(encoded, variants, keys, _key_uri(settings.key_uri_base, asset_id),
                         settings.key_rotation_segments, packaged,
                         trickplay=VariantInput(layout.IFRAMES, ladder.trickplay.width,
                                                ladder.trickplay.height, ladder.fps))
    _set_progress(services, asset_id, TRANSCODE_SHARE + 5)
    with _stage(services, "publish"):
        publish(services.storage, asset_id, version, packaged)

    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        if asset is None:  # deleted while we worked: take the output down again
            services.storage.delete_prefix(layout.asset_prefix(asset_id))
            keystore.delete_for_asset(session, asset_id)
        else:
            asset.status = Status.READY.value
            asset.progress = 100
            asset.version = version
            asset.renditions = [r.to_json() for r in result.renditions]
            keystore.delete_except(session, asset_id, {k.key_id for k in keys})
    # Committed: key servers drop their copies of the keys just deleted.
    stamps.renew(services.redis, stamps.asset(asset_id))
    if asset is None:
        return "deleted"
    prune_old_versions(services.storage, asset_id, version)
    log.info("asset ready", extra={"asset_id": asset_id, "version": version})
    return Status.READY.value


class _Took:
    seconds = 0.0


@contextmanager
def _stage(services: Services, name: str) -> Iterator[_Took]:
    """Times a stage; only stages that complete are recorded."""
    took = _Took()
    started = time.perf_counter()
    yield took
    took.seconds = time.perf_counter() - started
    metrics.PIPELINE_STAGE_DURATION.observe(services.redis, took.seconds, stage=name)


def _key_uri(base: str, asset_id: str) -> Callable[[str], str]:
    return lambda key_id: f"{base}/keys/{asset_id}/{key_id}"


def _set_progress(services: Services, asset_id: str, percent: int) -> None:
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        if asset is not None:
            asset.progress = max(0, min(99, percent))


def _progress_writer(services: Services, asset_id: str) -> Callable[[float], None]:
    last = [0.0]

    def on_progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            _set_progress(services, asset_id, int(fraction * TRANSCODE_SHARE))

    return on_progress
