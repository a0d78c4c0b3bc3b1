"""What leaves a channel's storage: segments past its DVR window, the unlisted
leftovers of a runner that died while it published, and everything once the
channel is deleted.

A segment goes ``GRACE_S`` after it left the window (the longer of the DVR window
and the live window): the playlists list nothing outside the window
(``live.served``), and none of them may be cached longer than the grace past
that, so no playlist a box or the CDN holds names a deleted segment. Objects go
first, then the rows: after a crash in between, rows outside the window (never
listed) are deleted again at the next pass.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from stb_origin.drm import keystore
from stb_origin.live import clips, urls
from stb_origin.live.index import LiveSegment
from stb_origin.services import Services
from stb_origin.storage.layout import asset_prefix

GRACE_S = 120
BATCH = 1000
_SEGMENT_NAME = re.compile(r"(\d+)-(\d+)\.ts")


def window_start(dvr_window_s: float, live_window_s: float, now: datetime) -> datetime:
    """The oldest time any playlist of the channel may list."""
    return now - timedelta(seconds=max(dvr_window_s, live_window_s))


def expire(services: Services, channel_id: str, dvr_window_s: float,
           now: datetime | None = None) -> int:
    """Delete the segments that left the window more than GRACE_S ago, but those a
    clip not yet made needs; how many."""
    now = now or datetime.now(UTC)
    cutoff = (window_start(dvr_window_s, services.settings.live_window_s, now)
              - timedelta(seconds=GRACE_S))
    table = LiveSegment.__table__.c
    removed = 0
    while True:
        with services.db.session() as session:
            query = (select(table.seq, table.epoch, table.renditions)
                     .where(table.channel_id == channel_id, table.starts_at < cutoff))
            held = clips.held_from(session, channel_id)
            if held is not None:  # a clip waiting to be made still needs them
                query = query.where(table.seq < held)
            rows = list(session.execute(query.order_by(table.seq).limit(BATCH)))
        if not rows:
            return removed
        services.storage.delete_keys(
            urls.segment_key(channel_id, rendition, row.epoch, row.seq)
            for row in rows for rendition in row.renditions)
        with services.db.session() as session:
            session.execute(delete(LiveSegment).where(LiveSegment.channel_id == channel_id,
                                                      LiveSegment.seq <= rows[-1].seq))
        removed += len(rows)


def sweep_unlisted(services: Services, channel_id: str, from_seq: int) -> int:
    """Delete stored segments numbered ``from_seq`` or more: a runner that died while
    publishing stored them but never listed them (the new run numbers from there on,
    under its own epoch, so none of them can be listed later)."""
    prefix = f"{asset_prefix(channel_id)}{urls.SEGMENTS}/"
    stale = []
    for key in services.storage.list_keys(prefix):
        match = _SEGMENT_NAME.fullmatch(key.rpartition("/")[2])
        if match is not None and int(match[2]) >= from_seq:
            stale.append(key)
    return services.storage.delete_keys(stale)


def purge(services: Services, channel_id: str) -> int:
    """A deleted channel's objects and content keys (its rows went with its row); how
    many objects. Both the API and the channel's last run call it: the run may have
    stored a segment after the API's pass, and purges once it has stopped writing."""
    removed = services.storage.delete_prefix(asset_prefix(channel_id))
    with services.db.session() as session:
        keystore.delete_for_asset(session, channel_id)
    return removed
