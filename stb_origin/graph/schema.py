"""The schema boxes query: channels with their guide and now/next, the caller's
entitlements. Types are plain views of the REST API's JSON (``guide.view``),
so that both answer alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import strawberry
from sqlalchemy.orm import Session
from strawberry.types import Info

from stb_origin.accounts.caller import Caller
from stb_origin.accounts.entitlements import Window, not_over
from stb_origin.accounts.packages import packages_of_channels
from stb_origin.activity.models import PROFILE_LENGTH
from stb_origin.activity.report import PROFILE
from stb_origin.activity.store import continue_row
from stb_origin.assets.channels import page_by_number
from stb_origin.catalog import browse
from stb_origin.catalog.browse import Criteria
from stb_origin.catalog.models import Kind
from stb_origin.catalog.titles import MAX_SEARCH, SLUG
from stb_origin.catalog.view import box_json
from stb_origin.db.paging import UnknownCursor
from stb_origin.db.types import ID
from stb_origin.graph.loaders import Json, Loaders

MAX_PAGE = 100
KINDS = tuple(Kind)
MAX_GUIDE = timedelta(hours=48)


class QueryError(Exception):
    """A refusal whose message the client may read (any other error is masked)."""


@dataclass
class Context:
    caller: Caller
    windows: tuple[Window, ...]  # the caller's account's entitlements
    loaders: Loaders


def _context(info: Info[Context, None]) -> Context:
    context: Context = info.context
    return context


@strawberry.type
class Programme:
    id: strawberry.ID
    start: datetime
    end: datetime
    title: str
    subtitle: str | None
    description: str | None
    categories: list[str]
    episode: str | None
    rating: str | None
    icon: str | None
    startover: str | None = strawberry.field(
        description="the start-over master while on air, inside the DVR window")
    catchup: str | None = strawberry.field(
        description="the catch-up master once over, inside the DVR window")

    @staticmethod
    def of(item: Json | None) -> Programme | None:
        if item is None:
            return None
        fields = {k: v for k, v in item.items() if k != "channel"}
        return Programme(**{**fields, "start": datetime.fromisoformat(fields["start"]),
                            "end": datetime.fromisoformat(fields["end"])})


@strawberry.type
class Channel:
    id: strawberry.ID
    name: str
    number: int | None
    packages: list[str]
    entitled: bool = strawberry.field(description="the caller's account may play it now")

    @strawberry.field
    async def now(self, info: Info[Context, None]) -> Programme | None:
        return Programme.of((await _context(info).loaders.now_next.load(self.id))[0])

    @strawberry.field
    async def next(self, info: Info[Context, None]) -> Programme | None:
        return Programme.of((await _context(info).loaders.now_next.load(self.id))[1])

    @strawberry.field(description="programmes overlapping [from, from + hours)")
    async def guide(self, info: Info[Context, None],
                    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
                    hours: int = 3) -> list[Programme]:
        context = _context(info)
        start = from_ or context.loaders.now
        if start.tzinfo is None:
            raise QueryError("from: a time with an offset, e.g. 2026-12-07T18:00:00Z")
        if not 1 <= hours <= MAX_GUIDE.total_seconds() // 3600:
            raise QueryError(f"hours: from 1 to {MAX_GUIDE.total_seconds() // 3600:.0f}")
        found = await context.loaders.guide.load((self.id, start, start + timedelta(hours=hours)))
        return [p for p in map(Programme.of, found) if p is not None]


@strawberry.type
class ChannelPage:
    items: list[Channel]
    next: str | None = strawberry.field(description="pass as `after` for the next page")


@strawberry.type
class Rating:
    scheme: str
    age_limit: int


@strawberry.type
class Image:
    width: int
    height: int
    url: str


@strawberry.type
class Artwork:
    kind: str
    sizes: list[Image]


@strawberry.type
class Rendition:
    type: str
    name: str | None
    width: int | None
    height: int | None
    bandwidth: int | None
    codecs: str | None
    language: str | None


@strawberry.type
class PlayableAsset:
    id: strawberry.ID
    role: str = strawberry.field(description="`main` plays the title, `trailer` previews it")
    playback: str = strawberry.field(
        description="where the box asks for its manifest URL (GET, its own token): the"
                    " master filtered for what it plays, signed where URLs are signed")

    @strawberry.field
    async def renditions(self, info: Info[Context, None]) -> list[Rendition]:
        found = await _context(info).loaders.renditions.load(str(self.id))
        return [Rendition(type=str(r.get("type", "video")), name=r.get("name"),
                          width=r.get("width"), height=r.get("height"),
                          bandwidth=r.get("bandwidth"), codecs=r.get("codecs"),
                          language=r.get("language")) for r in found]


@strawberry.type
class Title:
    id: strawberry.ID
    kind: str = strawberry.field(description="movie, series or episode")
    name: str
    description: str
    series: strawberry.ID | None
    season: int | None
    episode: int | None
    genres: list[str]
    rating: Rating | None
    available_from: datetime | None
    available_until: datetime | None
    artwork: list[Artwork]
    assets: list[PlayableAsset] = strawberry.field(
        description="what this box may play (a series plays through its episodes)")

    @strawberry.field(description="a series' episodes this box may play, in watching order")
    async def episodes(self, info: Info[Context, None], first: int = 20) -> list[Title]:
        if not 1 <= first <= MAX_PAGE:
            raise QueryError(f"first: from 1 to {MAX_PAGE}")
        if self.kind != "series":
            return []
        found = await _context(info).loaders.episodes.load(str(self.id))
        return [Title.of(item, _context(info).loaders.base_url) for item in found[:first]]

    @staticmethod
    def of(item: Json, base_url: str) -> Title:
        rating = item["rating"]
        return Title(
            id=strawberry.ID(item["id"]), kind=item["kind"], name=item["name"],
            description=item["description"], series=item["series"], season=item["season"],
            episode=item["episode"], genres=item["genres"],
            rating=Rating(scheme=rating["scheme"], age_limit=rating["age_limit"])
            if rating else None,
            available_from=_time(item["available_from"]),
            available_until=_time(item["available_until"]),
            artwork=[Artwork(kind=kind, sizes=[Image(**size) for size in sizes])
                     for kind, sizes in item["artwork"].items()],
            assets=[PlayableAsset(id=strawberry.ID(a["id"]), role=a["role"],
                                  playback=f"{base_url.rstrip('/')}/v1/playback/{a['id']}")
                    for a in item["assets"]])


@strawberry.type
class TitlePage:
    items: list[Title]
    next: str | None = strawberry.field(description="pass as `after` for the next page")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


@strawberry.type
class ResumePoint:
    asset: strawberry.ID
    title: str = strawberry.field(description="the asset's title")
    position: float = strawberry.field(description="seconds into the asset")
    duration: float | None
    at: datetime = strawberry.field(description="when the box reported it (its clock)")


@strawberry.type
class Entitlement:
    id: strawberry.ID
    package: str
    valid_from: datetime
    valid_until: datetime | None


def _entitled(context: Context, packages: list[str]) -> bool:
    now = context.loaders.now
    return any(w.package in packages and w.covers(now) for w in context.windows)


@strawberry.type
class Query:
    @strawberry.field(description="channels by number, a page at a time")
    async def channels(self, info: Info[Context, None], first: int = 50,
                       after: str | None = None) -> ChannelPage:
        context = _context(info)
        if not 1 <= first <= MAX_PAGE:
            raise QueryError(f"first: from 1 to {MAX_PAGE}")
        if after is not None and not ID.fullmatch(after):
            raise QueryError("after: the `next` of the previous page")

        def work(session: Session) -> tuple[list[Channel], str | None]:
            try:
                found = page_by_number(session, first + 1, after)
            except UnknownCursor:
                raise QueryError("after: no such channel (pass `next` as it was)") from None
            more = len(found) > first
            found = found[:first]
            held = packages_of_channels(session, [c.id for c in found])
            items = [Channel(id=strawberry.ID(c.id), name=c.name, number=c.number,
                             packages=held[c.id], entitled=_entitled(context, held[c.id]))
                     for c in found]
            return items, found[-1].id if more else None

        items, next_after = await context.loaders.read(work)
        return ChannelPage(items=items, next=next_after)

    @strawberry.field(description="the catalog as this box may see it: newest first, or a"
                                  " series' episodes in watching order")
    async def titles(self, info: Info[Context, None], first: int = 20,
                     after: str | None = None, kind: str | None = None,
                     genre: str | None = None, series: str | None = None,
                     search: str | None = None) -> TitlePage:
        context = _context(info)
        viewer = context.loaders.viewer
        if viewer is None:
            raise QueryError("titles: a box's token (bound to a device) is needed")
        if not 1 <= first <= MAX_PAGE:
            raise QueryError(f"first: from 1 to {MAX_PAGE}")
        for name, value in (("after", after), ("series", series)):
            if value is not None and not ID.fullmatch(value):
                raise QueryError(f"{name}: a title id")
        if kind is not None and kind not in KINDS:
            raise QueryError(f"kind: one of {', '.join(KINDS)}")
        if genre is not None and not SLUG.fullmatch(genre):
            raise QueryError("genre: a genre slug")
        if search is not None and len(search) > MAX_SEARCH:
            raise QueryError(f"search: at most {MAX_SEARCH} characters")
        criteria = Criteria(kind=kind, genre=genre, series=series, search=search or None)
        base_url = context.loaders.base_url

        def work(session: Session) -> tuple[list[Json], str | None]:
            try:
                found, playable = browse.page(session, viewer, criteria, first, after)
            except UnknownCursor:
                raise QueryError("after: no such title (pass `next` as it was)") from None
            more = len(found) > first
            found = found[:first]
            return box_json(session, found, base_url, playable), found[-1].id if more else None

        items, next_after = await context.loaders.read(work)
        return TitlePage(items=[Title.of(item, base_url) for item in items], next=next_after)

    @strawberry.field(description="the profile's continue-watching row: started, not finished,"
                                  " still ready and entitled; most recent first")
    async def continue_watching(self, info: Info[Context, None], profile: str,
                                first: int = 20) -> list[ResumePoint]:
        context = _context(info)
        account_id, now = context.caller.account_id, context.loaders.now
        if account_id is None:
            raise QueryError("continueWatching: a token of an account's box or user is needed")
        if not PROFILE.fullmatch(profile):
            raise QueryError(f"profile: 1 to {PROFILE_LENGTH} letters, digits, _ or -")
        if not 1 <= first <= MAX_PAGE:
            raise QueryError(f"first: from 1 to {MAX_PAGE}")

        def work(session: Session) -> list[ResumePoint]:
            return [ResumePoint(asset=strawberry.ID(asset.id), title=asset.title,
                                position=point.position_s, duration=asset.duration_s,
                                at=point.reported_at)
                    for point, asset in continue_row(session, account_id, profile, now,
                                                     first, None)]

        return await context.loaders.read(work)

    @strawberry.field
    async def entitlements(self, info: Info[Context, None]) -> list[Entitlement]:
        """The caller's account's entitlements that are not over."""
        context = _context(info)
        account_id, now = context.caller.account_id, context.loaders.now
        if account_id is None:  # the operator: no account
            return []

        def work(session: Session) -> list[Entitlement]:
            return [Entitlement(id=strawberry.ID(e.id), package=e.package_name,
                                valid_from=e.valid_from, valid_until=e.valid_until)
                    for e in not_over(session, account_id, now)]

        return await context.loaders.read(work)

