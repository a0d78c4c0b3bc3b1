"""Sweeps what dead processes left: partial uploads and the storage's temporary
files, at start-up and every few minutes (every HTTP replica does; they share
nothing but the files, and only files no live writer touches go); deletes
resumable uploads past their expiry and finishes those whose request died; and
forgets the sync change log's rows no cursor can still need."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio

from stb_origin.db import changes
from stb_origin.ingest import resumable
from stb_origin.ingest.leftovers import sweep_partial_uploads, upload_dir
from stb_origin.observability import metrics
from stb_origin.services import Services
from stb_origin.storage import Swept

log = logging.getLogger("stb_origin.sweeper")

# Leftovers live at most STB_TEMP_STALE_AFTER_S plus this; a sweep of a large
# storage folder walks every file, so not much more often.
SWEEP_EVERY_S = 300.0


def sweep_once(services: Services, now: datetime) -> None:
    _forget_old_changes(services, now)
    older_than = now - timedelta(seconds=services.settings.temp_stale_after_s)
    sweeps: dict[str, Callable[[], Swept]] = {
        "upload": lambda: sweep_partial_uploads(upload_dir(services.settings), older_than),
        # Resumable uploads past their expiry, with their bytes (ingest.resumable).
        "resumable": lambda: resumable.expire(services, now),
        # Not the multipart uploads of resumable uploads still under way: those
        # wait for their clients until they expire.
        "storage": lambda: services.storage.sweep_temporary(
            older_than, keep=resumable.live_storage_uploads(services)),
    }
    for kind, sweep in sweeps.items():
        try:
            swept = sweep()
        except Exception:  # the next sweep tries again; serving goes on
            log.exception("sweeping temporary files failed", extra={"kind": kind})
            continue
        if swept.count:
            metrics.TEMP_SWEPT_FILES.labels(kind).inc(swept.count)
            metrics.TEMP_SWEPT_BYTES.labels(kind).inc(swept.bytes)
            log.warning("swept temporary files a dead process left",
                        extra={"kind": kind, "files": swept.count, "bytes": swept.bytes,
                               "older_than": older_than.isoformat()})


async def sweep_forever(services: Services, every_s: float = SWEEP_EVERY_S,
                        clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    while True:
        await anyio.to_thread.run_sync(sweep_once, services, clock())
        await anyio.sleep(every_s)


def _forget_old_changes(services: Services, now: datetime) -> None:
    """The change log keeps a day more than a box's cursor stays good (sync.pages)."""
    try:
        with services.db.session() as session:
            changes.prune(session, now - timedelta(days=services.settings.sync_cursor_days + 1))
    except Exception:  # the next sweep tries again
        log.exception("forgetting old sync changes failed")
