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
from stb_origin.assets.channels import page_by_number
from stb_origin.db.paging import UnknownCursor
from stb_origin.db.types import ID
from stb_origin.graph.loaders import Json, Loaders

MAX_PAGE = 100
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

