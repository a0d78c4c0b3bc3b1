"""The sync protocol: ``GET /v1/sync[?cursor=...]`` answers one page.

    {"reset": bool, "phase": "snapshot" | "changes", "upserts": [{"kind", "id", "data"}],
     "deletes": [{"kind", "id"}], "cursor": "...", "more": bool}

Without a cursor the box gets a **snapshot**: every item it keeps (``items``),
walked in a fixed order over as many pages as it takes, the first one saying
``reset``. A box that gets ``reset`` forgets, once the snapshot is complete (the
first page whose ``phase`` is ``changes``), every item the snapshot did not send.
Then come **changes**: the change log's rows after the cursor (``db.changes``),
each item read as it is now, an upsert or a delete. A deleted channel takes its
guide days with it. ``more`` says to ask again at once; otherwise ask again later
with the same last cursor.

Changes made while a box walks a snapshot are not lost: the snapshot starts from
the change log's last number at its first page and the changes after it follow
the walk. A cursor older than ``STB_SYNC_CURSOR_DAYS`` (the change log keeps a
day more) gets a new snapshot with ``reset``: what it missed is gone from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from stb_origin.db import changes
from stb_origin.sync import items
from stb_origin.sync.cursor import CHANGES, SNAPSHOT, Cursor
from stb_origin.sync.items import Item

# The snapshot's walk, in order.
ENTITLEMENTS, CHANNELS = "entitlements", "channels"
PARTS = (ENTITLEMENTS, CHANNELS)
# A channel with its guide days is about this many items: how many channels a page reads.
ITEMS_PER_CHANNEL = 10
# A transaction that took its change number before a page was read may still be
# committing: a cursor's time stays this far behind the read.
COMMIT_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Page:
    reset: bool
    items: list[Item]
    cursor: Cursor
    more: bool


def next_page(session: Session, account_id: str, cursor: Cursor | None, limit: int,
              now: datetime, keep: timedelta) -> Page:
    """The page after ``cursor`` (a new snapshot without one or when it is older than
    ``keep``), at most about ``limit`` items."""
    if cursor is None or cursor.issued_at < now - keep:
        start = Cursor(SNAPSHOT, changes.last_seq(session), now - COMMIT_MARGIN, PARTS[0])
        return _snapshot(session, account_id, start, limit, now, reset=True)
    if cursor.phase == SNAPSHOT:
        return _snapshot(session, account_id, cursor, limit, now, reset=False)
    return _changes(session, account_id, cursor, limit, now)


def _snapshot(session: Session, account_id: str, cursor: Cursor, limit: int, now: datetime,
              reset: bool) -> Page:
    found: list[Item] = []
    part, after = cursor.part, cursor.after
    while len(found) < limit:
        if part == ENTITLEMENTS:
            found.append(items.entitlements_item(session, account_id, now))
            part, after = CHANNELS, ""
            continue
        channels = items.channels_after(session, after,
                                        max(1, (limit - len(found)) // ITEMS_PER_CHANNEL))
        if not channels:
            # Walked: the changes since the snapshot began come next.
            following = Cursor(CHANGES, cursor.seq, cursor.issued_at)
            more = bool(changes.after(session, cursor.seq, account_id, 1))
            return Page(reset, found, following, more)
        found.extend(items.channel_items(session, channels, now))
        after = channels[-1].id
    return Page(reset, found, Cursor(SNAPSHOT, cursor.seq, cursor.issued_at, part, after),
                more=True)


def _changes(session: Session, account_id: str, cursor: Cursor, limit: int,
             now: datetime) -> Page:
    rows = changes.after(session, cursor.seq, account_id, limit)
    if not rows:
        return Page(False, [], Cursor(CHANGES, cursor.seq, now - COMMIT_MARGIN), more=False)
    # Each item once, read as it is now.
    found: list[Item] = []
    for kind, key in dict.fromkeys((row.kind, row.item) for row in rows):
        item = _read(session, account_id, kind, key, now)
        if item is not None:
            found.append(item)
    more = len(rows) == limit
    # Rows after the last one sent were written after it (the log's lock).
    since = rows[-1].at if more else max(rows[-1].at, now - COMMIT_MARGIN)
    return Page(False, found, Cursor(CHANGES, rows[-1].seq, since), more)


def _read(session: Session, account_id: str, kind: str, key: str, now: datetime) -> Item | None:
    if kind == changes.ENTITLEMENTS:
        return items.entitlements_item(session, account_id, now)
    if kind == changes.CHANNEL:
        return items.channel_item(session, key)
    if kind == changes.GUIDE_DAY:
        return items.guide_day_item(session, key, now)
    return None  # an asset: what it changes (titles) is not kept on boxes yet
