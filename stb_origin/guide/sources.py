"""Guide sources: XMLTV URLs fetched on a schedule, and the poller that fetches them.

Who runs the poller: every HTTP server process, in its lifespan, next to the
reconciler and the sweeper. A due source is claimed in the database by moving
its ``next_fetch_at`` on with a compare-and-set (the database is the truth), so
that with any number of replicas each due fetch runs exactly once, with no
leader to elect. Not RQ: a fetch is small and periodic, RQ has no schedule of
its own (that would be one more process, rq-scheduler), and the workers' layer
may not import the guide. Parsing a large file takes seconds of CPU in a
worker thread of the server; the size limit bounds it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import select, update

from stb_origin.db.types import new_id, utcnow
from stb_origin.guide import store
from stb_origin.guide.fetch import FetchError, fetch_to
from stb_origin.guide.imports import MAX_XMLTV_BYTES, import_file
from stb_origin.guide.models import GuideSource
from stb_origin.guide.xmltv import XmltvError
from stb_origin.ingest.leftovers import upload_dir
from stb_origin.ingest.upload import PART_PREFIX, PART_SUFFIX
from stb_origin.services import Services

log = logging.getLogger("stb_origin.guide")

POLL_EVERY_S = 30.0
MIN_REFRESH_S = 300
MAX_REFRESH_S = 7 * 24 * 3600
DEFAULT_REFRESH_S = 6 * 3600
# A failed fetch is tried again after this, or its interval if shorter.
RETRY_AFTER_S = 600
BATCH = 10
# Programmes are kept this long after they end: longer than any DVR window a
# channel is likely to have (catch-up needs them), and a week of "what was on".
KEEP_ENDED = timedelta(days=14)


def check_refresh(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("refresh_seconds: expected an integer")
    if not MIN_REFRESH_S <= value <= MAX_REFRESH_S:
        raise ValueError(f"refresh_seconds: between {MIN_REFRESH_S} and {MAX_REFRESH_S}")
    return value


def new_source(url: str, refresh_s: int, now: datetime) -> GuideSource:
    # Due at once: the next poll fetches it.
    return GuideSource(id=new_id(), url=url, refresh_s=refresh_s, next_fetch_at=now,
                       created_at=now, updated_at=now)


class GuidePoller:
    def __init__(self, services: Services, every_s: float = POLL_EVERY_S,
                 max_bytes: int = MAX_XMLTV_BYTES) -> None:
        self.services = services
        self.every_s = every_s
        self.max_bytes = max_bytes

    def run_once(self, now: datetime | None = None) -> int:
        """Fetch and import every due source this process claims (how many), and
        delete programmes long over."""
        now = now or utcnow()
        fetched = 0
        for source_id, url in self._claim_due(now):
            self.fetch_source(source_id, url, now)
            fetched += 1
        with self.services.db.session() as session:
            pruned = store.prune(session, now - KEEP_ENDED)
        if pruned:
            log.info("old programmes deleted", extra={"programmes": pruned})
        return fetched

    def _claim_due(self, now: datetime) -> list[tuple[str, str]]:
        with self.services.db.session() as session:
            due = session.execute(select(GuideSource.id, GuideSource.url,
                                         GuideSource.refresh_s, GuideSource.next_fetch_at)
                                  .where(GuideSource.next_fetch_at <= now)
                                  .order_by(GuideSource.next_fetch_at).limit(BATCH)).all()
        claimed = []
        for source_id, url, refresh_s, due_at in due:
            with self.services.db.session() as session:
                result = session.execute(
                    update(GuideSource)
                    .where(GuideSource.id == source_id, GuideSource.next_fetch_at == due_at)
                    .values(next_fetch_at=now + timedelta(seconds=refresh_s)))
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append((source_id, url))
        return claimed

    def fetch_source(self, source_id: str, url: str, now: datetime) -> dict[str, Any] | None:
        """Fetch, import and record the outcome on the source; its JSON afterwards
        (None if it was deleted meanwhile)."""
        folder = upload_dir(self.services.settings)
        folder.mkdir(parents=True, exist_ok=True)
        # Named like an upload's part file: the sweeper takes it if this process dies.
        dest = folder / f"{PART_PREFIX}guide-{secrets.token_hex(8)}{PART_SUFFIX}"
        report: dict[str, Any] | None = None
        error: dict[str, str] | None = None
        try:
            fetch_to(url, dest, self.max_bytes)
            report = import_file(self.services, dest, now, origin=f"source {source_id}")
        except FetchError as exc:
            error = {"code": exc.code, "message": exc.message}
        except XmltvError as exc:
            error = {"code": exc.code, "message": exc.message}
        finally:
            dest.unlink(missing_ok=True)
        if error is not None:
            log.warning("guide source failed", extra={"source_id": source_id,
                                                      "error_code": error["code"]})
        with self.services.db.session() as session:
            source = session.get(GuideSource, source_id)
            if source is None:
                return None
            source.last_fetch_at = now
            source.last_status = "ok" if error is None else "failed"
            source.last_error = error
            if report is not None:
                source.last_report = report
            if error is not None:
                retry = now + timedelta(seconds=min(RETRY_AFTER_S, source.refresh_s))
                source.next_fetch_at = min(source.next_fetch_at, retry)
            return source.to_json()

    async def watch(self) -> None:
        """Poll after poll until cancelled; an outage is logged once, not every poll."""
        failing = False
        while True:
            try:
                await anyio.to_thread.run_sync(self.run_once)
            except Exception as exc:  # the database away: the next poll tries again
                if not failing:
                    log.warning("guide poll failed; retrying",
                                extra={"error": type(exc).__name__})
                failing = True
            else:
                failing = False
            await anyio.sleep(self.every_s)
