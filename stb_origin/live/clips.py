"""Live-to-VOD: a window of a channel's retained segments becomes an asset.

A clip is cut on segment boundaries (every segment that overlaps the asked
window) and made without re-encoding or even re-encrypting: its segments are
the channel's stored bytes, copied under the asset's own version prefix
(``storage.layout``), and the channel keys that encrypt them are stored again
under the asset's id, wrapped for it. So the clip is played, entitled, listed and
deleted like any uploaded asset, and it outlives the DVR window and the channel.

It is made by the pipeline's run (``pipeline.process`` with ``make`` as the
body): held by a lease with a fencing token, retried, the master pointed at the
new version last. Until its clip is made, retention keeps the segments
(``held_from``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin import pipeline
from stb_origin.accounts import packages
from stb_origin.assets import runs
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset, Status
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, new_id, utcnow
from stb_origin.drm import keystore
from stb_origin.drm.keys import ContentKey, key_uri
from stb_origin.live import playlists, urls
from stb_origin.live.index import LiveSegment
from stb_origin.live.publisher import SEGMENT_TYPE
from stb_origin.packager.package import peak_bitrate
from stb_origin.packager.publish import content_type, point_master_at
from stb_origin.services import Services
from stb_origin.storage.layout import MASTER, MEDIA_PLAYLIST, asset_prefix, segment_name
from stb_origin.transcode import MediaError

MAX_CLIP_S = 12 * 3600
# How far before the asked start a segment overlapping it may begin (longer
# than any segment: a passthrough source's key frames decide where they end).
LONGEST_SEGMENT_S = 60
COPY_WORKERS = 8  # object stores reward parallel requests, as in packager.publish


class ClipError(ValueError):
    """The asked clip cannot be made: the message says why, in words for the API."""


class Clip(Base):
    """Which of a channel's segments an asset is made of (inclusive numbers)."""

    __tablename__ = "clips"

    asset_id: Mapped[str] = mapped_column(ForeignKey(Asset.id, ondelete="CASCADE"),
                                          primary_key=True)
    # No foreign key: the clip outlives its channel.
    channel_id: Mapped[str] = mapped_column(String(32), index=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    # The window the segments cover, start of the first to end of the last.
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, object]:
        return {"channel": self.channel_id, "start": iso(self.starts_at),
                "end": iso(self.ends_at)}


def create(session: Session, channel_id: str, start: datetime, end: datetime, title: str,
           now: datetime) -> tuple[Asset, Clip]:
    """A queued asset for the segments of the channel overlapping [start, end), in the
    channel's packages. The caller enqueues its run after the commit. Raises
    ClipError (the window) or LookupError (no such channel)."""
    if end <= start:
        raise ClipError("end must be after start")
    if end - start > timedelta(seconds=MAX_CLIP_S):
        raise ClipError(f"a clip lasts at most {MAX_CLIP_S // 3600} hours")
    if end > now:
        raise ClipError("end is in the future: a clip is made of what was on air")
    if session.get(Channel, channel_id) is None:
        raise LookupError("no such channel")
    table = LiveSegment.__table__.c
    rows = [row for row in session.execute(
        select(table.seq, table.starts_at, table.duration)
        .where(table.channel_id == channel_id, table.starts_at < end,
               table.starts_at > start - timedelta(seconds=LONGEST_SEGMENT_S))
        .order_by(table.seq))
        if row.starts_at + timedelta(seconds=row.duration) > start]
    if not rows:
        raise ClipError("the channel retains no segment in that window (it is older than"
                        " the DVR window, or the channel was not on air)")
    clip = Clip(asset_id=new_id(), channel_id=channel_id, first_seq=rows[0].seq,
                last_seq=rows[-1].seq, starts_at=rows[0].starts_at,
                ends_at=rows[-1].starts_at + timedelta(seconds=rows[-1].duration))
    # No source file: what it is made of, for GET /v1/assets/{id}.
    asset = Asset(id=clip.asset_id, title=title, source_key="", status=Status.QUEUED.value,
                  source={"clip": {**clip.to_json(), "segments": len(rows)}})
    session.add(asset)
    session.flush()
    session.add(clip)
    for name in packages.packages_of_channels(session, [channel_id])[channel_id]:
        packages.add_asset(session, name, asset.id)
    session.flush()
    return asset, clip


def held_from(session: Session, channel_id: str) -> int | None:
    """The first segment a clip not yet made still needs (retention keeps it and all
    after it), or None."""
    return session.scalar(
        select(func.min(Clip.first_seq)).join(Asset, Asset.id == Clip.asset_id)
        .where(Clip.channel_id == channel_id,
               Asset.status.in_((Status.QUEUED.value, Status.PROCESSING.value))))


def body_for(services: Services, asset_id: str) -> pipeline.RunBody | None:
    """The run body for an asset: ``make`` for a clip, None (the pipeline's) otherwise."""
    with services.db.session() as session:
        return make if session.get(Clip, asset_id) is not None else None


def make(services: Services, run: runs.Run, _work: Path, check: Callable[[], None]) -> str:
    """Copy the clip's segments, store its keys, publish its playlists, master last."""
    asset_id = run.asset_id
    with services.db.session() as session:
        clip = session.get(Clip, asset_id)
        assert clip is not None, "body_for chose this body"
        rows = list(session.scalars(
            select(LiveSegment).where(LiveSegment.channel_id == clip.channel_id,
                                      LiveSegment.seq.between(clip.first_seq, clip.last_seq))
            .order_by(LiveSegment.seq)))
        channel = session.get(Channel, clip.channel_id)
        described = {r["name"]: r for r in (channel.renditions or [])} if channel else {}
        channel_id = clip.channel_id
        wanted = clip.last_seq - clip.first_seq + 1
    if len(rows) != wanted:
        raise MediaError("clip_window_gone", f"{wanted - len(rows)} of the clip's {wanted}"
                         " segments are no longer stored (the channel was deleted)")
    # Tallest first, as the channel's master lists them.
    names = sorted((name for name in rows[0].renditions if all(name in r.renditions for r in rows)),
                   key=lambda name: -int(described.get(name, {}).get("height") or 0))
    if not names:
        raise MediaError("clip_no_rendition", "no rendition runs through the whole window"
                         " (the channel's ladder changed inside it)")

    version = "v" + secrets.token_hex(6)
    with services.db.session() as session:
        # An earlier run of the clip stored some of them already: the same ids.
        had = set(keystore.key_ids(session, asset_id))
        keys = []
        for key_id in sorted({row.key_id for row in rows} - had):
            key = keystore.load(session, channel_id, key_id, services.envelope)
            if key is None:
                raise MediaError("clip_window_gone", "a key of the window is gone")
            keys.append(ContentKey(key_id, key))
        # Stored before any playlist that names them is published.
        keystore.store(session, asset_id, keys, services.envelope, version=version)
        keystore.move_to_version(session, asset_id, had, version)

    prefix = f"{asset_prefix(asset_id)}{version}/"
    # Numbered from 0 like an uploaded asset's; times, keys and IVs stay the channel's.
    first = rows[0].discontinuity
    segments = [playlists.Segment(i, r.starts_at, r.duration, r.discontinuity - first,
                                  r.epoch, r.key_id, r.iv, tuple(names))
                for i, r in enumerate(rows)]
    sizes = _copy_segments(services, channel_id, rows, names, prefix, check)

    durations = [s.duration for s in segments]
    target = playlists.target_duration(0, segments)
    to_key = key_uri(services.settings.key_uri_base, asset_id)
    renditions = []
    for name in names:
        text = playlists.media_playlist(
            segments, name, target, to_key, "vod",
            segment_uri=lambda _rendition, segment: segment_name(segment.seq, ".ts"))
        services.storage.put_bytes(f"{prefix}{name}/{MEDIA_PLAYLIST}", text.encode(),
                                   content_type(MEDIA_PLAYLIST))
        facts = described.get(name, {})  # as the runner recorded it (it may have gone)
        renditions.append({
            "type": "video", "name": name, "codecs": facts.get("codecs") or "",
            "bandwidth": peak_bitrate(sizes[name], durations, target),
            "average_bandwidth": int(sum(sizes[name]) * 8 / sum(durations)),
            "segment_count": len(segments),
            **{k: facts[k] for k in ("width", "height", "frame_rate") if facts.get(k)}})
    master = playlists.master_playlist(renditions, lambda name: f"{name}/{MEDIA_PLAYLIST}")
    services.storage.put_bytes(prefix + MASTER, master.encode(), content_type(MASTER))
    # Renewed just now: no other run can claim the asset before the master points here.
    runs.write(services.db, run, duration_s=round(sum(durations), 3))
    point_master_at(services.storage, asset_id, version)
    return pipeline.finish(services, run, version, renditions)


def _copy_segments(services: Services, channel_id: str, rows: list[LiveSegment],
                   names: list[str], prefix: str,
                   check: Callable[[], None]) -> dict[str, list[int]]:
    """Each rendition's segments, in order, under the clip's prefix; their sizes."""
    def copy(name: str, index: int, row: LiveSegment) -> int:
        data = services.storage.get_bytes(
            urls.segment_key(channel_id, name, row.epoch, row.seq))
        services.storage.put_bytes(f"{prefix}{name}/{segment_name(index, '.ts')}", data,
                                   SEGMENT_TYPE)
        return len(data)

    sizes: dict[str, list[int]] = {}
    with ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="clip") as pool:
        for name in names:
            futures = [pool.submit(copy, name, i, row) for i, row in enumerate(rows)]
            sizes[name] = [future.result() for future in futures]
            check()  # raises Superseded: a newer run (or a DELETE) has the asset
    return sizes


__all__ = ["Clip", "ClipError", "body_for", "create", "held_from", "make"]
