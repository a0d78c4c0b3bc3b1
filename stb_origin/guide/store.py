"""The guide in the database: one import in one transaction, and the two reads boxes make."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from stb_origin.assets.channels import Channel
from stb_origin.db import changes
from stb_origin.db.types import new_id
from stb_origin.guide.models import ChannelMapping, Programme
from stb_origin.guide.plan import MAX_LENGTH, plan_import
from stb_origin.guide.xmltv import Document


def import_document(session: Session, document: Document, now: datetime) -> dict[str, Any]:
    """Plan against the mapping and write it, all in the caller's transaction:
    either the whole import is there afterwards or none of it. Returns the report."""
    mapping = {xmltv_id: channel_id for xmltv_id, channel_id in session.execute(
        select(ChannelMapping.xmltv_id, ChannelMapping.channel_id))}
    plan = plan_import(document, mapping, now)
    spans = plan.spans()
    # Two imports touching a channel at once (the poller and an upload) take turns:
    # each would otherwise delete before the other's rows are visible and both
    # insert. Locked in id order, so two imports cannot wait on each other.
    # (SQLite has no row locks; its one writer at a time does the same.)
    if spans:
        session.execute(select(Channel.id).where(Channel.id.in_(sorted(spans)))
                        .order_by(Channel.id).with_for_update())
    replaced = 0
    for channel_id, (first, last) in spans.items():
        result = session.execute(delete(Programme).where(
            Programme.channel_id == channel_id, Programme.starts_at < last,
            Programme.starts_at > first - MAX_LENGTH, Programme.ends_at > first,
        ).execution_options(synchronize_session=False))
        replaced += result.rowcount  # type: ignore[attr-defined]
        # Boxes keep the guide by channel and day: every day the import touched.
        changes.record(session, changes.GUIDE_DAY, _days(channel_id, first - MAX_LENGTH, last))
    if plan.accepted:
        session.execute(insert(Programme), [_row(item.channel_id, item.start, item.end,
                                                 item.listing, now)
                                            for item in plan.accepted])
    return plan.report(replaced)


def _days(channel_id: str, first: datetime, end: datetime) -> Iterator[str]:
    """``<channel>/<day>`` of every UTC day from ``first`` to before ``end``."""
    day, last = first.date(), (end - timedelta(microseconds=1)).date()
    while day <= last:
        yield changes.guide_day(channel_id, day)
        day += timedelta(days=1)


def _row(channel_id: str, start: datetime, end: datetime, listing: Any,
         now: datetime) -> dict[str, Any]:
    return {"id": new_id(), "channel_id": channel_id, "starts_at": start, "ends_at": end,
            "title": listing.title, "subtitle": listing.subtitle,
            "description": listing.description, "categories": list(listing.categories),
            "episode": listing.episode, "rating": listing.rating, "icon_url": listing.icon_url,
            "xmltv_channel": listing.xmltv_channel, "imported_at": now}


def prune(session: Session, ended_before: datetime) -> int:
    """Delete programmes that ended before ``ended_before``; how many."""
    result = session.execute(delete(Programme).where(Programme.ends_at < ended_before)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def channels(session: Session, ids: Sequence[str] | None) -> list[Channel]:
    """The channels asked for (all when None), by number then name."""
    query = select(Channel)
    if ids is not None:
        query = query.where(Channel.id.in_(ids))
    # Unnumbered channels last on every engine (SQLite sorts NULL first, PostgreSQL last).
    return list(session.scalars(query.order_by(Channel.number.is_(None), Channel.number,
                                               Channel.name, Channel.id)))


def programmes(session: Session, channel_ids: Sequence[str], start: datetime,
               end: datetime) -> list[Programme]:
    """Programmes of these channels overlapping [start, end), by channel and time."""
    if not channel_ids:
        return []
    return list(session.scalars(select(Programme).where(
        Programme.channel_id.in_(channel_ids), Programme.starts_at < end,
        Programme.starts_at > start - MAX_LENGTH, Programme.ends_at > start,
    ).order_by(Programme.channel_id, Programme.starts_at)))


def now_and_next(session: Session, channel_id: str,
                 now: datetime) -> tuple[Programme | None, Programme | None]:
    on_air = session.scalars(select(Programme).where(
        Programme.channel_id == channel_id, Programme.starts_at <= now,
        Programme.starts_at > now - MAX_LENGTH, Programme.ends_at > now)).first()
    following = session.scalars(select(Programme).where(
        Programme.channel_id == channel_id, Programme.starts_at > now)
        .order_by(Programme.starts_at).limit(1)).first()
    return on_air, following
