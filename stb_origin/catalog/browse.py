"""What a box may browse: titles available now, open to its account, playable by it.

The database decides what it can: the window, the age limit, the filters, and
whether some ``main`` asset of the title is ``ready`` and in a package granted
to the account now (for a series: of one of its episodes that passes those
too). What the box can decode is decided here, on the renditions of those
assets (``origin.masters.Filter``, the rule behind the filtered masters), so a
page is filled batch by batch until it has enough titles that pass.

A viewer without an account (the operator, an admin token) sees every title
that is available and has a ready asset, whatever its packages or device.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session, aliased

from stb_origin.accounts.caller import Caller
from stb_origin.accounts.devices import read_device
from stb_origin.accounts.models import Entitlement, PackageAsset
from stb_origin.assets.records import Asset, Status
from stb_origin.catalog.models import Kind, Role, Title, TitleAsset, TitleGenre
from stb_origin.catalog.titles import name_contains
from stb_origin.db.paging import UnknownCursor, newest_first
from stb_origin.db.types import UtcDateTime
from stb_origin.origin.masters import Filter, family

Json = dict[str, Any]


@dataclass(frozen=True)
class Viewer:
    """Whose view: the account's entitlements (None: all) and what the box plays
    (None: everything)."""

    account_id: str | None
    device: Filter | None
    at: datetime


class NoDevice(Exception):
    """A box's view needs its device: what it plays."""


def viewer_of(session: Session, caller: Caller, at: datetime) -> Viewer:
    """The caller's view: everything for the operator and admins; a box's account
    and device otherwise."""
    if caller.is_admin or caller.is_operator:
        return Viewer(account_id=None, device=None, at=at)
    if caller.device_id is None or caller.account_id is None:
        raise NoDevice()
    device = read_device(session.connection(), caller.device_id)
    assert device is not None  # identify() checked it is active and the account's
    caps = device.capabilities
    return Viewer(account_id=caller.account_id, at=at, device=Filter.for_device(
        caps.max_width, caps.max_height, caps.codecs, caps.video_ranges))


@dataclass(frozen=True)
class Criteria:
    kind: str | None = None
    genre: str | None = None
    series: str | None = None
    search: str | None = None
    max_age: int | None = None


# The viewer's time and account are bound when a statement runs (``_params``), so the
# statements themselves are built once per process: building them (aliases, nested
# EXISTS) cost more than running them.
AT = bindparam("at", type_=UtcDateTime())
ACCOUNT = bindparam("account", type_=String())


def _params(viewer: Viewer) -> dict[str, Any]:
    return {"at": viewer.at, "account": viewer.account_id}


def _available(title: Any) -> Any:
    return and_(or_(title.available_from.is_(None), title.available_from <= AT),
                or_(title.available_until.is_(None), title.available_until > AT))


def _granted() -> Any:
    """The asset of the title_assets row at hand is in a package granted to the account
    now. Correlated, so that a page walks titles newest first and stops when it is full
    instead of working out every entitled asset first."""
    return exists(select(PackageAsset.asset_id)
                  .join(Entitlement, Entitlement.package_name == PackageAsset.package_name)
                  .where(PackageAsset.asset_id == TitleAsset.asset_id,
                         Entitlement.account_id == ACCOUNT,
                         Entitlement.valid_from <= AT,
                         or_(Entitlement.valid_until.is_(None), Entitlement.valid_until > AT)))


@functools.cache
def _open_links(entitled_only: bool,
                roles: tuple[str, ...] = (Role.MAIN,)) -> Select[str, str, str]:
    """(title id, asset id, role) of the links to ready assets the viewer may play
    (``entitled_only``: for a viewer with an account). Readiness is a correlated check
    too: SQLite would otherwise walk every ready asset (its status index) to find a
    page's few."""
    ready = exists(select(Asset.id).where(Asset.id == TitleAsset.asset_id,
                                          Asset.status == Status.READY.value))
    query = select(TitleAsset.title_id, TitleAsset.asset_id, TitleAsset.role).where(
        TitleAsset.role.in_(list(roles)), ready)
    if entitled_only:
        query = query.where(_granted())
    return query


def _plays(entitled_only: bool, title: Any) -> Any:
    """``title`` has a main asset open to the viewer."""
    return exists(_open_links(entitled_only).with_only_columns(TitleAsset.asset_id)
                  .where(TitleAsset.title_id == title.id))


@functools.cache
def _visible_to(entitled_only: bool) -> Select[Any]:
    series, episode = aliased(Title), aliased(Title)
    plays_itself = and_(Title.kind != Kind.SERIES.value, _plays(entitled_only, Title))
    has_open_episode = and_(Title.kind == Kind.SERIES.value, exists(
        select(episode.id).where(episode.series_id == Title.id, _available(episode),
                                 _plays(entitled_only, episode))))
    # An episode shows only while its series does.
    series_open = or_(Title.series_id.is_(None), exists(
        select(series.id).where(series.id == Title.series_id, _available(series))))
    return select(Title).where(_available(Title), series_open,
                               or_(plays_itself, has_open_episode))


def _visible(viewer: Viewer, criteria: Criteria) -> Select[Any]:
    query = _visible_to(viewer.account_id is not None)
    if criteria.kind is not None:
        query = query.where(Title.kind == criteria.kind)
    if criteria.series is not None:
        query = query.where(Title.series_id == criteria.series)
    if criteria.search:
        query = query.where(name_contains(criteria.search))
    if criteria.genre is not None:
        query = query.where(Title.id.in_(select(TitleGenre.title_id)
                                         .where(TitleGenre.genre_slug == criteria.genre)))
    if criteria.max_age is not None:
        query = query.where(or_(Title.age_limit.is_(None),
                                Title.age_limit <= criteria.max_age))
    return query


@functools.cache
def _episodes_available() -> Select[str, str | None]:
    episode = aliased(Title)
    return select(episode.id, episode.series_id).where(_available(episode))


def plays(renditions: list[Json] | None, device: Filter) -> bool:
    """Whether a device can play an asset with these renditions: a video rendition
    it keeps, or for audio only, an audio rendition it decodes."""
    media = [r for r in renditions or [] if r.get("type", "video") in ("video", "audio")]
    videos = [r for r in media if r.get("type", "video") == "video"]
    for rendition in videos or media:
        families = frozenset(family(c) for c in str(rendition.get("codecs", "")).split(",")
                             if c.strip())
        if device.keeps(int(rendition.get("width") or 0), int(rendition.get("height") or 0),
                        families, str(rendition.get("video_range") or "SDR")):
            return True
    return False


def playable_assets(session: Session, viewer: Viewer, titles: list[Title],
                    roles: Iterable[str] = (Role.MAIN,)) -> dict[str, list[Json]]:
    """For each title, the assets the viewer may play ({"id", "role"}); a series
    counts the main assets of its available episodes as its own."""
    ids = [t.id for t in titles]
    if not ids:
        return {}
    # Whose asset each row is: its own title's, and its series' when that was asked too.
    owners: dict[str, list[str]] = {t.id: [t.id] for t in titles}
    serieses = [t.id for t in titles if t.kind == Kind.SERIES]
    params = _params(viewer)
    if serieses:
        available = _episodes_available()
        series_column = available.selected_columns[1]
        for episode_id, series_id in session.execute(
                available.where(series_column.in_(serieses)), params):
            owners.setdefault(episode_id, []).append(str(series_id))
    links = session.execute(_open_links(viewer.account_id is not None, tuple(roles)).where(
        TitleAsset.title_id.in_(list(owners))).order_by(TitleAsset.role, TitleAsset.asset_id),
        params).all()
    renditions: dict[str, list[Json] | None] = {
        asset_id: found for asset_id, found in session.execute(
            select(Asset.id, Asset.renditions).where(
                Asset.id.in_({link.asset_id for link in links})))}
    found: dict[str, list[Json]] = {}
    for title_id, asset_id, role in links:
        if viewer.device is None or plays(renditions.get(asset_id), viewer.device):
            for owner in owners[title_id]:
                found.setdefault(owner, []).append({"id": asset_id, "role": role})
    return found


def page(session: Session, viewer: Viewer, criteria: Criteria, limit: int,
         after: str | None) -> tuple[list[Title], dict[str, list[Json]]]:
    """Up to ``limit + 1`` titles the viewer may see (the extra one: there is more),
    after the title ``after``; newest first, or in episode order for one series."""
    query = _visible(viewer, criteria)
    shown: list[Title] = []
    playable: dict[str, list[Json]] = {}
    cursor = after
    while len(shown) <= limit:
        batch = _ordered(session, query, _params(viewer), criteria, limit + 1, cursor)
        found = playable_assets(session, viewer, batch)
        shown += [t for t in batch if t.id in found]
        playable.update(found)
        if len(batch) <= limit:
            break
        cursor = batch[-1].id
    return shown[:limit + 1], playable


def some(session: Session, viewer: Viewer,
         title_ids: list[str]) -> tuple[list[Title], dict[str, list[Json]]]:
    """Which of these titles the viewer may see, as on a page, with the assets it may play."""
    found = list(session.scalars(_visible(viewer, Criteria()).where(Title.id.in_(title_ids)),
                                 _params(viewer)))
    playable = playable_assets(session, viewer, found)
    return [t for t in found if t.id in playable], playable


def episodes_of(session: Session, viewer: Viewer,
                series_ids: list[str]) -> tuple[dict[str, list[Title]], dict[str, list[Json]]]:
    """The episodes of these series the viewer may see, in watching order, by series;
    with the assets it may play. Three queries however many series."""
    found = list(session.scalars(_visible(viewer, Criteria()).where(
        Title.series_id.in_(series_ids)).order_by(Title.series_id, Title.season_number,
                                                   Title.episode_number, Title.id),
        _params(viewer)))
    playable = playable_assets(session, viewer, found)
    by_series: dict[str, list[Title]] = {i: [] for i in series_ids}
    for episode in found:
        if episode.id in playable and episode.series_id is not None:
            by_series[episode.series_id].append(episode)
    return by_series, playable


def one(session: Session, viewer: Viewer, title_id: str) -> tuple[Title, list[Json]] | None:
    """The title if the viewer may see it, with every asset it may play (trailers too)."""
    title = session.scalar(_visible(viewer, Criteria()).where(Title.id == title_id),
                           _params(viewer))
    if title is None or title.id not in playable_assets(session, viewer, [title]):
        return None
    assets = playable_assets(session, viewer, [title], roles=tuple(Role))
    return title, assets.get(title.id, [])


def _ordered(session: Session, query: Select[Any], params: dict[str, Any],
             criteria: Criteria, limit: int, after: str | None) -> list[Title]:
    if criteria.series is None:
        return newest_first(session, Title, query, limit, after, params)
    # One series: its episodes in the order they are watched.
    order = (Title.season_number, Title.episode_number)
    query = query.order_by(*order)
    if after is not None:
        cursor = session.get(Title, after)
        if cursor is None or cursor.series_id != criteria.series:
            raise UnknownCursor()
        query = query.where(or_(
            Title.season_number > cursor.season_number,
            and_(Title.season_number == cursor.season_number,
                 Title.episode_number > cursor.episode_number)))
    return list(session.scalars(query.limit(limit), params))
