"""Runs of the pipeline: at most one per asset at a time, fenced, and retried when they die.

The database is the truth. A run *claims* its asset with one conditional UPDATE
that bumps ``assets.run``, the fencing token, and succeeds only when the asset is
``queued``, or ``processing`` under a run whose lease has lapsed (no heartbeat for
``run_lease_s``: its worker is dead). That row is the lease; every later write of
the run — heartbeat, progress, the switch to ``ready`` — is conditional on the
token it got, so a run that was superseded (paused, partitioned, its worker
presumed dead) can neither write progress nor publish: its first write raises
``Superseded`` and it stops. Redis holds no part of this: losing Redis loses no
lease and grants none twice.

Failures are turned into attempts here too: ``retry_or_fail`` puts the asset back
to ``queued`` with its next attempt number and time (the API shows both), or
fails it with a named cause once the attempts are used up. The reconciler
(``stb_origin.reconciler``) enqueues assets whose attempt is due and retries the
runs whose lease lapsed; RQ only carries the jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, case, or_, select, update
from sqlalchemy.orm import Session

from stb_origin.assets.records import Asset, Status
from stb_origin.db import Database, changes
from stb_origin.db.types import utcnow

log = logging.getLogger("stb_origin.runs")

# Seconds before each further attempt: attempt 2 after 15 s, attempt 3 after 60 s...
RETRY_BACKOFF_S = (15, 60, 240, 900)
_ASSETS = cast(Table, Asset.__table__)
_C = _ASSETS.c


class Superseded(Exception):
    """This run no longer holds its asset: another run claimed it, or it was deleted."""


@dataclass(frozen=True)
class Run:
    asset_id: str
    token: int
    attempt: int
    source_key: str


def claim(db: Database, asset_id: str, lease_s: float, now: datetime | None = None) -> Run | None:
    """The lease on the asset for a new run, or None (another live run holds it, or
    it is ready, failed or gone)."""
    now = now or utcnow()
    claimable = or_(_C.status == Status.QUEUED.value,
                    and_(_C.status == Status.PROCESSING.value,
                         or_(_C.heartbeat_at.is_(None),
                             _C.heartbeat_at < now - timedelta(seconds=lease_s))))
    with db.session() as session:
        claimed = session.execute(
            update(_ASSETS).where(_C.id == asset_id, claimable)
            .values(run=_C.run + 1, status=Status.PROCESSING.value, progress=0,
                    error_code=None, error_message=None, next_attempt_at=None,
                    heartbeat_at=now, updated_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.execute(select(_C.run, _C.attempt, _C.source_key)
                              .where(_C.id == asset_id)).one()
    return Run(asset_id, row.run, row.attempt, row.source_key)


def write(db: Database, run: Run, now: datetime | None = None, **values: object) -> None:
    """Update the asset as this run (and renew its lease); Superseded if it lost it."""
    now = now or utcnow()
    with db.session() as session:
        done = session.execute(
            update(_ASSETS).where(_C.id == run.asset_id, _C.run == run.token,
                                  _C.status == Status.PROCESSING.value)
            .values(heartbeat_at=now, updated_at=now, **values))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Superseded(f"run {run.token} of {run.asset_id} was superseded")
        # Titles it plays in may show on boxes now (sync).
        changes.record(session, changes.ASSET, [run.asset_id])


def holds(db: Database, asset_id: str, token: int) -> bool:
    """Whether run ``token`` still holds the asset (helpers of a run ask this)."""
    with db.session() as session:
        found = session.execute(select(_C.run).where(
            _C.id == asset_id, _C.status == Status.PROCESSING.value)).scalar_one_or_none()
    return found == token


@contextmanager
def kept_alive(db: Database, run: Run, every_s: float) -> Iterator[Callable[[], None]]:
    """Renew the lease every ``every_s`` from a thread while the block runs; yields a
    ``check()`` that raises Superseded once a renewal found the lease gone."""
    stop = threading.Event()
    lost: list[BaseException] = []

    def renew() -> None:
        while not stop.wait(every_s):
            try:
                write(db, run)
            except Superseded as exc:
                lost.append(exc)
                return
            except Exception as exc:  # the database is down: try again next time
                log.warning("run heartbeat not written", extra={"error": type(exc).__name__})

    def check() -> None:
        if lost:
            raise lost[0]

    thread = threading.Thread(target=renew, name=f"lease-{run.asset_id}", daemon=True)
    thread.start()
    try:
        yield check
    finally:
        stop.set()
        thread.join(timeout=5)


def finish(db: Database, run: Run, version: str, renditions: list[dict[str, object]],
           keep_old_s: float, now: datetime | None = None,
           thumbnails: dict[str, object] | None = None) -> None:
    """The run's end: ``ready`` on ``version``; every other version (the one it
    replaces, what superseded runs left) may be pruned after ``keep_old_s``.
    Superseded if the run lost its asset."""
    now = now or utcnow()
    with db.session() as session:
        done = session.execute(
            update(_ASSETS).where(_C.id == run.asset_id, _C.run == run.token,
                                  _C.status == Status.PROCESSING.value)
            .values(status=Status.READY.value, progress=100, version=version,
                    renditions=renditions, thumbnails=thumbnails,
                    heartbeat_at=None, updated_at=now,
                    # Also when it replaces nothing: a superseded run may have left files.
                    prune_after=now + timedelta(seconds=keep_old_s)))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Superseded(f"run {run.token} of {run.asset_id} was superseded")


def retry_or_fail(db: Database, asset_id: str, code: str, message: str, max_attempts: int,
                  token: int | None = None, lapsed_before: datetime | None = None,
                  now: datetime | None = None) -> str | None:
    """After a failed attempt: ``queued`` with the next attempt due after its
    back-off, or ``failed`` with the cause once ``max_attempts`` were made.
    ``token``: only if that run still holds the asset; ``lapsed_before``: only if
    its run's lease lapsed before then (a dead run). Returns the new status, or
    None when the asset was not processing (or no longer this run's)."""
    now = now or utcnow()
    held = [_C.id == asset_id, _C.status == Status.PROCESSING.value]
    if token is not None:
        held.append(_C.run == token)
    if lapsed_before is not None:
        held.append(or_(_C.heartbeat_at.is_(None), _C.heartbeat_at < lapsed_before))
    with db.session() as session:
        attempt = session.scalar(select(_C.attempt).where(*held))
        if attempt is None:
            return None
        if attempt >= max_attempts:
            status, values = Status.FAILED.value, {}
        else:
            backoff = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S)) - 1]
            status, values = Status.QUEUED.value, {
                "progress": 0, "attempt": attempt + 1,
                "next_attempt_at": now + timedelta(seconds=backoff)}
        # Conditional on the attempt read: two deciders cannot both count one failure.
        done = session.execute(
            update(_ASSETS).where(*held, _C.attempt == attempt)
            .values(status=status, error_code=code, error_message=message[:2000],
                    heartbeat_at=None, updated_at=now, **values))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
    log.warning("attempt failed", extra={"asset_id": asset_id, "code": code,
                                         "status": status, "attempt": attempt})
    return status


REPUBLISHED = (Status.READY, Status.FAILED, Status.PROCESSING)


def republish(session: Session, asset_id: str, now: datetime | None = None,
              statuses: tuple[Status, ...] = REPUBLISHED) -> int | None:
    """The asset's inputs changed (a sidecar track came or went): it goes through
    the pipeline again. A ``ready`` or ``failed`` asset is ``queued`` afresh (its
    published version plays on until a new one replaces it); a run in progress is
    superseded, since it started without the change; a ``queued`` asset waits as
    it is, as its run reads the inputs when it starts. ``statuses``: only from
    these (a retry: ``failed`` only). Returns the attempt whose job to enqueue
    once the session commits, or None for nothing to enqueue.

    A superseded run's attempt is counted, so the next job has an id of its own
    (``queues.pipeline_job_id``) while the old one may still be winding down."""
    now = now or utcnow()
    again = update(_ASSETS).where(_C.id == asset_id,
                                  _C.status.in_([status.value for status in statuses]))
    done = session.execute(again.values(
        status=Status.QUEUED.value, run=_C.run + 1, progress=0, error_code=None,
        error_message=None, heartbeat_at=None, next_attempt_at=None, updated_at=now,
        attempt=case((_C.status == Status.PROCESSING.value, _C.attempt + 1), else_=1)))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempt: int = session.execute(select(_C.attempt).where(_C.id == asset_id)).scalar_one()
    return attempt


def live(db: Database, lease_s: float, now: datetime | None = None) -> set[str]:
    """The assets a live run holds now."""
    lapsed = (now or utcnow()) - timedelta(seconds=lease_s)
    with db.session() as session:
        return set(session.scalars(select(_C.id).where(
            _C.status == Status.PROCESSING.value, _C.heartbeat_at >= lapsed)))


def put_back(db: Database, asset_id: str) -> bool:
    """A run stopped on purpose (a worker's cold shutdown): ``queued`` again, the
    same attempt; False if the asset was not processing."""
    with db.session() as session:
        done = session.execute(
            update(_ASSETS).where(_C.id == asset_id, _C.status == Status.PROCESSING.value)
            .values(status=Status.QUEUED.value, progress=0, heartbeat_at=None,
                    updated_at=utcnow()))
        return bool(done.rowcount == 1)  # type: ignore[attr-defined]
