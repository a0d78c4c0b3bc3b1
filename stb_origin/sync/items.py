"""What a box keeps, read as it is now: one ``Item`` per thing it holds.

- ``entitlements``, id = the account: the account's entitlements not yet over,
  each a package and its window (the box decides by the clock which hold, so an
  entitlement that ends while the box is offline ends on the box too);
- ``channel``, id = the channel: name, number and the packages holding it (a
  box plays it while one of them is entitled: the same rule as key delivery);
- ``guide_day``, id = ``<channel>/<YYYY-MM-DD>``: the programmes of that channel
  starting on that UTC day, from yesterday on (a box forgets older days itself);
- ``title``, id = the title: as ``GET /v1/titles`` shows it to this box now (what
  its account may play and the box can decode, available now).

Guide data is the same for every box, as at ``GET /v1/guide``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stb_origin.accounts.entitlements import not_over
from stb_origin.accounts.models import Entitlement
from stb_origin.accounts.packages import packages_of_channels
from stb_origin.assets.channels import Channel
from stb_origin.catalog import browse
from stb_origin.catalog import titles as catalog_titles
from stb_origin.catalog.browse import Criteria, Viewer
from stb_origin.catalog.models import Title
from stb_origin.catalog.view import box_json
from stb_origin.db import changes
from stb_origin.db.types import iso
from stb_origin.guide.models import Programme

Json = dict[str, Any]
GUIDE_PAST_DAYS = 1


@dataclass(frozen=True)
class Item:
    kind: str
    id: str
    data: Json | None  # None: the box deletes its copy

    def to_json(self) -> Json:
        if self.data is None:
            return {"kind": self.kind, "id": self.id}
        return {"kind": self.kind, "id": self.id, "data": self.data}


def title_items(session: Session, viewer: Viewer, title_ids: list[str],
                base_url: str) -> list[Item]:
    """Each title as the box may see it now, or a delete where it may not (any more)."""
    shown, playable = browse.some(session, viewer, title_ids)
    upserts = {t["id"]: t for t in box_json(session, shown, base_url, playable)}
    return [Item(changes.TITLE, i, upserts.get(i)) for i in title_ids]


def titles_after(session: Session, viewer: Viewer, after: str | None, limit: int,
                 base_url: str) -> tuple[list[Item], str | None]:
    """A page of the titles the box may see, newest first; and the last one's id when
    there are more."""
    shown, playable = browse.page(session, viewer, Criteria(), limit, after)
    more = len(shown) > limit
    shown = shown[:limit]
    items = [Item(changes.TITLE, t["id"], t) for t in box_json(session, shown, base_url,
                                                                 playable)]
    return items, shown[-1].id if more else None


def titles_playing(session: Session, asset_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(t for a in asset_ids for t in catalog_titles.titles_playing(
        session, a)))


def _passed(column: Any, since: datetime, now: datetime) -> Any:
    """The time in ``column`` fell in (since, now]."""
    return (column > since) & (column <= now)


def titles_timed(session: Session, since: datetime, now: datetime) -> list[str]:
    """Titles whose window opened or closed in (since, now], and the episodes of such
    series: the clock changed what boxes may see, not a write."""
    found = list(session.scalars(select(Title.id).where(
        _passed(Title.available_from, since, now) | _passed(Title.available_until, since, now))))
    episodes = session.scalars(select(Title.id).where(Title.series_id.in_(found)))
    return list(dict.fromkeys([*found, *episodes]))


def entitlements_timed(session: Session, account_id: str, since: datetime,
                       now: datetime) -> bool:
    """Whether one of the account's entitlements began or ended in (since, now]."""
    return session.scalar(select(Entitlement.id).where(
        Entitlement.account_id == account_id,
        _passed(Entitlement.valid_from, since, now)
        | _passed(Entitlement.valid_until, since, now)).limit(1)) is not None


def first_guide_day(now: datetime) -> date:
    return now.astimezone(UTC).date() - timedelta(days=GUIDE_PAST_DAYS)


def entitlements_item(session: Session, account_id: str, now: datetime) -> Item:
    return Item(changes.ENTITLEMENTS, account_id, {"items": [
        {"id": e.id, "package": e.package_name, "valid_from": iso(e.valid_from),
         "valid_until": iso(e.valid_until)} for e in not_over(session, account_id, now)]})


def channels_after(session: Session, after: str, limit: int) -> list[Channel]:
    return list(session.scalars(select(Channel).where(Channel.id > after)
                                .order_by(Channel.id).limit(limit)))


def channel_items(session: Session, channels: Sequence[Channel], now: datetime) -> list[Item]:
    """Each channel, then its guide days, in two queries however many channels."""
    ids = [c.id for c in channels]
    holding = packages_of_channels(session, ids)
    days = _guide_days(session, ids, first_guide_day(now), None)
    items = []
    for channel in channels:
        items.append(_channel_item(channel, holding[channel.id]))
        items.extend(Item(changes.GUIDE_DAY, changes.guide_day(channel.id, day), _day_data(
            channel.id, day, programmes)) for day, programmes in days[channel.id].items())
    return items


def channel_item(session: Session, channel_id: str) -> Item:
    channel = session.get(Channel, channel_id)
    if channel is None:
        # The box deletes the channel's guide days with it.
        return Item(changes.CHANNEL, channel_id, None)
    return _channel_item(channel, packages_of_channels(session, [channel_id])[channel_id])


def guide_day_item(session: Session, key: str, now: datetime) -> Item | None:
    """The day as it is now; None when the day is before what boxes keep."""
    channel_id, _, day_text = key.partition("/")
    day = date.fromisoformat(day_text)
    if day < first_guide_day(now):
        return None
    found = _guide_days(session, [channel_id], day, day + timedelta(days=1))[channel_id].get(day)
    if not found:
        return Item(changes.GUIDE_DAY, key, None)
    return Item(changes.GUIDE_DAY, key, _day_data(channel_id, day, found))


def _channel_item(channel: Channel, packages: list[str]) -> Item:
    return Item(changes.CHANNEL, channel.id, {"name": channel.name, "number": channel.number,
                                              "packages": packages})


def _day_data(channel_id: str, day: date, programmes: list[Json]) -> Json:
    return {"channel": channel_id, "day": day.isoformat(), "programmes": programmes}


def _guide_days(session: Session, channel_ids: Sequence[str], first: date,
                last: date | None) -> dict[str, dict[date, list[Json]]]:
    """Programmes starting on [first, last) (no end: all), by channel and UTC day."""
    start = datetime.combine(first, time(), UTC)
    query = select(Programme).where(Programme.channel_id.in_(channel_ids),
                                    Programme.starts_at >= start)
    if last is not None:
        query = query.where(Programme.starts_at < datetime.combine(last, time(), UTC))
    days: dict[str, dict[date, list[Json]]] = defaultdict(lambda: defaultdict(list))
    for p in session.scalars(query.order_by(Programme.channel_id, Programme.starts_at)):
        days[p.channel_id][p.starts_at.date()].append({
            "id": p.id, "start": iso(p.starts_at), "end": iso(p.ends_at), "title": p.title,
            "subtitle": p.subtitle, "description": p.description,
            "categories": list(p.categories), "episode": p.episode, "rating": p.rating,
            "icon": p.icon_url})
    return days
