"""The flow of one asset: probe → complexity → plan ladder → transcode → package +
encrypt → publish.

A long master is transcoded span by span by any idle workers (``chunked``).

Each run holds its asset by a lease with a fencing token (``assets.runs``) and
publishes under a fresh version prefix with the master playlist last, so a
retried or re-run job ends in the same consistent state, a half-published asset
is never ``ready``, and a superseded run publishes nothing. The version it
replaces stays playable for ``retired_version_keep_s`` (the reconciler prunes it).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from redis.exceptions import RedisError

from stb_origin import chunked
from stb_origin.assets import runs, tracks
from stb_origin.assets.announce import asset_changed
from stb_origin.assets.causes import failure_cause
from stb_origin.assets.records import Asset, Status
from stb_origin.db import Database, stamps
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key, key_uri
from stb_origin.observability import logs, metrics
from stb_origin.packager.package import (
    AudioInput,
    SubtitleInput,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.packager.publish import point_master_at, publish
from stb_origin.packager.thumbnails import make_strip
from stb_origin.proc import ProcessFailed
from stb_origin.queues import enqueue_pipeline
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage import layout
from stb_origin.transcode import (
    AudioTrack,
    Ladder,
    MediaError,
    analyse,
    plan_ladder,
    probe,
    probe_audio_file,
    transcode,
)
from stb_origin.transcode.normalise import normalised
from stb_origin.transcode.subtitles import (
    SubtitleSource,
    master_subtitles,
    plan_subtitles,
    read_cues,
)

log = logging.getLogger("stb_origin.pipeline")

# Share of the progress bar that transcoding takes; packaging and publishing the rest.
TRANSCODE_SHARE = 90
PROGRESS_INTERVAL_S = 1.0


# What a run does with the asset it holds, in its own work dir; returns the status.
# The pipeline's is ``_run``; a live-to-VOD clip has its own (``live.clips``).
RunBody = Callable[[Services, runs.Run, Path, Callable[[], None]], str]


def process(services: Services, asset_id: str, body: RunBody | None = None) -> str:
    """Run the whole pipeline (or ``body``) for one asset, if no other live run holds
    it; returns the asset's status after the run (or "skipped", "superseded",
    "deleted"). Whatever the body, the run is held, retried and cleaned up alike."""
    # Every line logged during the run, by any module, carries the asset id.
    with logs.context(asset_id=asset_id):
        started = time.perf_counter()
        outcome = "error"
        try:
            outcome = _process(services, asset_id, body or _run)
            return outcome
        finally:
            metrics.JOB_DURATION.observe(services.redis, time.perf_counter() - started,
                                         outcome=outcome)


def _process(services: Services, asset_id: str, body: RunBody) -> str:
    settings = services.settings
    run = runs.claim(services.db, asset_id, settings.run_lease_s)
    if run is None:
        with services.db.session() as session:
            if session.get(Asset, asset_id) is None:
                log.warning("asset vanished before processing")
                return "deleted"
        log.info("not run: another live run holds the asset, or it is not waiting")
        return "skipped"
    asset_changed(services.redis, asset_id, Status.PROCESSING.value, 0)
    # What runs that died on this machine left (a whole worker tree killed: no
    # process of it was left to clean up), this asset's dead run among them.
    sweep_work_dirs(settings, services.db)
    # Named by the asset: remove_work_dirs and sweep_work_dirs find it by that.
    work = settings.work_dir / f"{asset_id}-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    try:
        # Renewed often enough that one missed renewal is not taken for death.
        with runs.kept_alive(services.db, run, every_s=settings.run_lease_s / 4) as check:
            return body(services, run, work, check)
    except MediaError as exc:
        # Bad media is final: retrying cannot fix it.
        runs.write(services.db, run, status=Status.FAILED.value, error_code=exc.code,
                   error_message=exc.message[:2000])
        asset_changed(services.redis, asset_id, Status.FAILED.value, 0, exc.code)
        log.warning("asset failed", extra={"code": exc.code})
        return Status.FAILED.value
    except runs.Superseded:
        return _superseded(services, asset_id)
    except Exception as exc:
        code, message = failure_cause(exc)
        status = runs.retry_or_fail(services.db, asset_id, code, message,
                                    settings.job_retries + 1, token=run.token)
        if status == Status.FAILED.value:
            metrics.JOB_FINAL_FAILURES.inc(services.redis)
        if status is not None:
            asset_changed(services.redis, asset_id, status, 0, code)
        return status or "superseded"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def queue_run(services: Services, asset_id: str, attempt: int = 1) -> None:
    """Enqueue the job of an asset the database has just made ``queued``."""
    try:
        enqueue_pipeline(services.queue, services.settings, asset_id, attempt)
    except RedisError as exc:
        # Nothing is lost: the asset is queued in the database, which is the truth;
        # the reconciler enqueues its job once Redis answers again.
        log.warning("job not enqueued; the reconciler will",
                    extra={"asset_id": asset_id, "error": type(exc).__name__})


def remove_work_dirs(settings: Settings, asset_id: str) -> None:
    """What runs of ``asset_id`` on this machine left in the work dir."""
    for work in settings.work_dir.glob(f"{asset_id}-*"):
        shutil.rmtree(work, ignore_errors=True)


def sweep_work_dirs(settings: Settings, db: Database) -> int:
    """Remove the work dirs no live run holds (their run died with its worker)."""
    if not settings.work_dir.is_dir():
        return 0
    live = runs.live(db, settings.run_lease_s)
    swept = 0
    for work in settings.work_dir.iterdir():
        if work.name.partition("-")[0] not in live:
            shutil.rmtree(work, ignore_errors=True)
            swept += 1
    if swept:
        log.info("stale work dirs removed", extra={"count": swept})
    return swept


def _superseded(services: Services, asset_id: str) -> str:
    """This run lost its asset: to a newer run (which publishes; what this one left
    is pruned with the other old versions), or to a DELETE (take it all down)."""
    with services.db.session() as session:
        deleted = session.get(Asset, asset_id) is None
        if deleted:
            keystore.delete_for_asset(session, asset_id)
    if deleted:
        services.storage.delete_prefix(layout.asset_prefix(asset_id))
        chunked.forget(services, asset_id)
        stamps.renew(services.redis, stamps.asset(asset_id))
        return "deleted"
    log.warning("run superseded by a newer one; stopped without publishing")
    return "superseded"


@dataclass
class Sidecars:
    """The asset's sidecar tracks, downloaded into the work dir."""

    audio_files: list[Path] = field(default_factory=list)  # ffmpeg inputs 1, 2, ...
    audio_tracks: list[AudioTrack] = field(default_factory=list)  # one per file, in order
    subtitles: list[SubtitleSource] = field(default_factory=list)  # WebVTT files


def _download_sidecars(services: Services, asset_id: str, work: Path) -> Sidecars:
    with services.db.session() as session:
        rows = tracks.of_asset(session, asset_id)
    sidecars = Sidecars()
    folder = work / "tracks"
    folder.mkdir()
    for row in rows:
        path = folder / (row.id + Path(row.object_key).suffix)
        services.storage.download(row.object_key, path)
        if row.kind == tracks.Kind.SUBTITLES:
            sidecars.subtitles.append(
                SubtitleSource(row.language, row.name, row.forced, path=path))
            continue
        probed = probe_audio_file(path, services.settings).track
        sidecars.audio_files.append(path)
        # Named as the upload named it; never the default: the master's track is.
        sidecars.audio_tracks.append(dataclasses.replace(
            probed, input_index=len(sidecars.audio_files), language=row.language,
            title=row.name, default=False))
    return sidecars


def _run(services: Services, run: runs.Run, work: Path, check: Callable[[], None]) -> str:
    settings, asset_id = services.settings, run.asset_id
    source_path = work / ("source" + Path(run.source_key).suffix)
    with _stage(services, "download"):
        services.storage.download(run.source_key, source_path)
        sidecars = _download_sidecars(services, asset_id, work)

    with _stage(services, "probe"):
        source = probe(source_path, settings)
    complexity = None
    if settings.per_title:
        with _stage(services, "complexity"):
            complexity = analyse(source_path, source, settings)
    ladder = plan_ladder(source, settings, complexity, sidecar_audio=sidecars.audio_tracks)
    # An audio-only master has no video segments for subtitles to follow.
    subtitles = plan_subtitles([*master_subtitles(source), *sidecars.subtitles]
                               if ladder.renditions else [])
    facts = {**source.to_json(), "complexity": complexity.to_json() if complexity else None}
    facts["warnings"] += ladder.warnings
    for warning in facts["warnings"]:
        log.warning("left out of the package", extra={"reason": warning})
    runs.write(services.db, run, source=facts, duration_s=source.duration_s)
    in_spans = chunked.worth_it(source, ladder, services)

    def measure(unmeasured: Ladder) -> Ladder:
        if not settings.loudness_normalisation:
            return unmeasured
        with _stage(services, "loudness"):
            return normalised([source_path, *sidecars.audio_files], unmeasured, settings)

    if not in_spans:
        ladder = measure(ladder)
    encoded = work / "encoded"
    with _stage(services, "transcode") as took:
        progress = _progress_writer(services, run, check)
        if in_spans:
            # The audio's loudness is measured while other workers encode the spans.
            chunked.transcode(services, run, source_path, source, ladder, encoded, progress,
                              audio_files=sidecars.audio_files, measure=measure)
        else:
            transcode(source_path, source, ladder, encoded, settings, on_progress=progress,
                      audio_files=sidecars.audio_files)
    if took.seconds > 0:
        metrics.TRANSCODE_REALTIME_FACTOR.observe(
            services.redis, source.duration_s / took.seconds,
            top_rendition=ladder.renditions[0].name if ladder.renditions else "audio")
    with _stage(services, "subtitles"):
        cues = read_cues(source_path, source, subtitles, work / "subtitles", settings)
    _write_progress(services, run, TRANSCODE_SHARE)  # the throttle may have eaten it

    version = "v" + secrets.token_hex(6)
    keys = [generate_key() for _ in range(keys_needed(count_segments(encoded),
                                                      settings.key_rotation_segments))]
    # Keys are stored (wrapped) before any playlist that names them is published.
    with services.db.session() as session:
        keystore.store(session, asset_id, keys, services.envelope, version=version)

    variants = [VariantInput(r.name, r.width, r.height, ladder.fps, r.video_range)
                for r in ladder.renditions]
    audio = [AudioInput(a.name, a.group, a.label, a.language, a.channels, a.default)
             for a in ladder.audio]
    packaged = work / "packaged"
    with _stage(services, "package"):
        result = package(encoded, variants, keys, key_uri(settings.key_uri_base, asset_id),
                         settings.key_rotation_segments, packaged,
                         iframes=[VariantInput(t.name, t.width, t.height, ladder.fps)
                                  for t in ladder.iframes],
                         audio=audio,
                         subtitles=[SubtitleInput(s.name, s.label, s.language, s.forced,
                                                  tuple(cues[s.name])) for s in subtitles],
                         closed_captions=ladder.closed_captions)
        thumbnails = _thumbnails(asset_id, version, encoded, ladder, packaged)
    _write_progress(services, run, TRANSCODE_SHARE + 5)
    with _stage(services, "publish"):
        publish(services.storage, asset_id, version, packaged)
        # Renewed just now, the lease has run_lease_s to go: no other run can have
        # claimed the asset before the master is pointed at this version.
        runs.write(services.db, run)
        point_master_at(services.storage, asset_id, version)
    chunked.forget(services, asset_id)  # published: the spans are not needed again
    # Each audio rendition with the loudness it was measured at and the gain it got.
    loudness = {a.name: a.loudness.to_json() if a.loudness else None for a in ladder.audio}
    return finish(services, run, version,
                  [r.to_json() for r in result.renditions]
                  + [{**a.to_json(), "loudness": loudness[a.name]} for a in result.audio]
                  + [s.to_json() for s in result.subtitles], thumbnails)


def _thumbnails(asset_id: str, version: str, encoded: Path, ladder: Ladder,
                packaged: Path) -> dict[str, object] | None:
    """The strip of thumbnails, from the smallest trick-play track; None for an
    audio-only asset, or when it could not be made: the asset plays without it."""
    if not ladder.iframes:
        return None
    smallest = ladder.iframes[-1]
    try:
        strip = make_strip(encoded / smallest.name, smallest.width, smallest.height,
                           packaged / layout.THUMBNAILS)
    except ProcessFailed as exc:
        log.warning("no thumbnails", extra={"asset_id": asset_id, "reason": str(exc)})
        return None
    return strip.to_json(f"/{layout.asset_prefix(asset_id)}{version}/{layout.THUMBNAILS}")


def finish(services: Services, run: runs.Run, version: str,
           renditions: list[dict[str, object]],
           thumbnails: dict[str, object] | None = None) -> str:
    """The end of a run whose master now points at ``version``: ``ready``, and the
    key servers told. Every run body ends here."""
    runs.finish(services.db, run, version, renditions, thumbnails=thumbnails,
                keep_old_s=services.settings.retired_version_keep_s)
    try:
        # Committed: key servers see the new version's keys at once.
        stamps.renew(services.redis, stamps.asset(run.asset_id))
    except RedisError:
        # They still find them: a key missing from a copy is read from the database.
        log.warning("asset stamp not renewed: Redis unavailable")
    asset_changed(services.redis, run.asset_id, Status.READY.value, 100)
    log.info("asset ready", extra={"asset_id": run.asset_id, "version": version})
    return Status.READY.value


def _write_progress(services: Services, run: runs.Run, progress: int) -> None:
    runs.write(services.db, run, progress=progress)
    asset_changed(services.redis, run.asset_id, Status.PROCESSING.value, progress)


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


def _progress_writer(services: Services, run: runs.Run,
                     check: Callable[[], None]) -> Callable[[float], None]:
    last = [0.0]

    def on_progress(fraction: float) -> None:
        check()  # raises Superseded: the transcode (and its ffmpeg) stops here
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            _write_progress(services, run, max(0, min(99, int(fraction * TRANSCODE_SHARE))))

    return on_progress
