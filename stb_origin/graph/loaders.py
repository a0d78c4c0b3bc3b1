"""What one GraphQL request reads, batched: whatever a query asks of fifty
channels, each kind of read is one database round trip (one worker thread hop,
one session), not one per channel."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import anyio
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session
from strawberry.dataloader import DataLoader

from stb_origin.assets.channels import Channel
from stb_origin.guide import store
from stb_origin.guide.models import Programme
from stb_origin.guide.plan import MAX_LENGTH
from stb_origin.guide.view import programme_json
from stb_origin.services import Services

Json = dict[str, Any]
T = TypeVar("T")
NowNext = tuple[Json | None, Json | None]
# A channel's guide between two times.
GuideKey = tuple[str, datetime, datetime]


@dataclass
class Loaders:
    services: Services
    now: datetime
    now_next: DataLoader[str, NowNext] = field(init=False)
    guide: DataLoader[GuideKey, list[Json]] = field(init=False)

    def __post_init__(self) -> None:
        self.now_next = DataLoader(self._now_next)
        self.guide = DataLoader(self._guide)

    async def read(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.services.db.session() as session:
                return work(session)
        return await anyio.to_thread.run_sync(run)

    async def _now_next(self, ids: list[str]) -> Sequence[NowNext]:
        now = self.now

        def work(session: Session) -> list[NowNext]:
            channels = _channels(session, ids)
            on_air = {p.channel_id: p for p in session.scalars(select(Programme).where(
                Programme.channel_id.in_(ids), Programme.starts_at <= now,
                Programme.starts_at > now - MAX_LENGTH, Programme.ends_at > now))}
            firsts = (select(Programme.channel_id, func.min(Programme.starts_at))
                      .where(Programme.channel_id.in_(ids), Programme.starts_at > now)
                      .group_by(Programme.channel_id)).subquery()
            following = {p.channel_id: p for p in session.scalars(select(Programme).where(
                tuple_(Programme.channel_id, Programme.starts_at).in_(select(firsts))))}

            def shown(programme: Programme | None) -> Json | None:
                if programme is None:
                    return None
                return programme_json(programme, channels[programme.channel_id], now)

            return [(shown(on_air.get(i)), shown(following.get(i))) for i in ids]

        return await self.read(work)

    async def _guide(self, keys: list[GuideKey]) -> Sequence[list[Json]]:
        now = self.now
        windows: dict[tuple[datetime, datetime], list[str]] = defaultdict(list)
        for channel_id, start, end in keys:
            windows[(start, end)].append(channel_id)

        def work(session: Session) -> list[list[Json]]:
            channels = _channels(session, [k[0] for k in keys])
            found: dict[GuideKey, list[Json]] = defaultdict(list)
            # One query per distinct window: a home screen asks one for every channel.
            for (start, end), ids in windows.items():
                for p in store.programmes(session, ids, start, end):
                    found[(p.channel_id, start, end)].append(
                        programme_json(p, channels[p.channel_id], now))
            return [found[key] for key in keys]

        return await self.read(work)


def _channels(session: Session, ids: Sequence[str]) -> dict[str, Channel]:
    return {c.id: c for c in session.scalars(select(Channel).where(Channel.id.in_(set(ids))))}
