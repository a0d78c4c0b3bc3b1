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

What the clock changes is not written anywhere: a title whose availability
window opened or closed since the cursor is sent again. A change to what the
account may see (an entitlement granted, revoked, begun or ended) changes which
titles it sees, which only a new snapshot tells it: such a page is a ``reset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from stb_origin.catalog.browse import Viewer
from stb_origin.db import changes
from stb_origin.db.paging import UnknownCursor
from stb_origin.sync import items
from stb_origin.sync.cursor import CHANGES, SNAPSHOT, Cursor
from stb_origin.sync.items import Item

# The snapshot's walk, in order.
ENTITLEMENTS, CHANNELS, TITLES = "entitlements", "channels", "titles"
PARTS = (ENTITLEMENTS, CHANNELS, TITLES)
# A channel with its guide days is about this many items: how many channels a page reads.
ITEMS_PER_CHANNEL = 10
# A transaction that took its change number before a page was read may still be
# committing: a cursor's time stays this far behind the read.
COMMIT_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Box:
    """Whose copy: the account and what its box may see (``catalog.browse``)."""

    account_id: str
    viewer: Viewer
    base_url: str

    @property
    def now(self) -> datetime:
        return self.viewer.at


@dataclass(frozen=True)
class Page:
    reset: bool
    items: list[Item]
    cursor: Cursor
    more: bool


def next_page(session: Session, box: Box, cursor: Cursor | None, limit: int,
              keep: timedelta) -> Page:
    """The page after ``cursor`` (a new snapshot without one or when it is older than
    ``keep``), at most about ``limit`` items."""
    if cursor is None or cursor.issued_at < box.now - keep:
        return _new_snapshot(session, box, limit)
    if cursor.phase == SNAPSHOT:
        try:
            return _snapshot(session, box, cursor, limit, reset=False)
        except UnknownCursor:  # the title the walk stopped at was deleted: walk again
            return _new_snapshot(session, box, limit)
    return _changes(session, box, cursor, limit)


def _new_snapshot(session: Session, box: Box, limit: int) -> Page:
    start = Cursor(SNAPSHOT, changes.last_seq(session), box.now - COMMIT_MARGIN, box.now,
                   PARTS[0])
    return _snapshot(session, box, start, limit, reset=True)


def _snapshot(session: Session, box: Box, cursor: Cursor, limit: int, reset: bool) -> Page:
    found: list[Item] = []
    part, after = cursor.part, cursor.after
    while len(found) < limit:
        if part == ENTITLEMENTS:
            found.append(items.entitlements_item(session, box.account_id, box.now))
            part, after = CHANNELS, ""
        elif part == CHANNELS:
            channels = items.channels_after(session, after,
                                            max(1, (limit - len(found)) // ITEMS_PER_CHANNEL))
            if channels:
                found.extend(items.channel_items(session, channels, box.now))
                after = channels[-1].id
            else:
                part, after = TITLES, ""
        else:
            titles, last = items.titles_after(session, box.viewer, after or None,
                                              limit - len(found), box.base_url)
            found.extend(titles)
            if last is None:
                # Walked: the changes since the snapshot began come next.
                following = Cursor(CHANGES, cursor.seq, cursor.issued_at, cursor.read_at)
                more = bool(changes.after(session, cursor.seq, box.account_id, 1))
                return Page(reset, found, following, more)
            after = last
    return Page(reset, found, Cursor(SNAPSHOT, cursor.seq, cursor.issued_at, cursor.read_at,
                                     part, after), more=True)


def _changes(session: Session, box: Box, cursor: Cursor, limit: int) -> Page:
    now = box.now
    rows = changes.after(session, cursor.seq, box.account_id, limit)
    if (any(row.kind == changes.ENTITLEMENTS for row in rows)
            or items.entitlements_timed(session, box.account_id, cursor.read_at, now)):
        return _new_snapshot(session, box, limit)
    more = len(rows) == limit
    # Rows after the last one sent were written after it (the log's lock).
    if more:
        since = rows[-1].at
    else:
        since = max(rows[-1].at, now - COMMIT_MARGIN) if rows else now - COMMIT_MARGIN
    last_seq = rows[-1].seq if rows else cursor.seq
    # Each item once, read as it is now.
    keys = list(dict.fromkeys((row.kind, row.item) for row in rows))
    found: list[Item] = []
    for kind, key in keys:
        if kind == changes.CHANNEL:
            found.append(items.channel_item(session, key))
        elif kind == changes.GUIDE_DAY:
            day = items.guide_day_item(session, key, now)
            if day is not None:
                found.append(day)
    titles = [key for kind, key in keys if kind == changes.TITLE]
    titles += items.titles_playing(session, [key for kind, key in keys
                                             if kind == changes.ASSET])
    titles += items.titles_timed(session, cursor.read_at, now)
    if titles:
        found.extend(items.title_items(session, box.viewer, list(dict.fromkeys(titles)),
                                       box.base_url))
    return Page(False, found, Cursor(CHANGES, last_seq, since, now), more)
