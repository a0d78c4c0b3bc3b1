"""The change log: what boxes keep a copy of, and which of it changed, in commit order.

Every write to something a box syncs (a channel, a day of the guide, an account's
entitlements, what a package holds) adds a row here in the same transaction, and
``GET /v1/sync`` reads the rows after a box's cursor (``stb_origin.sync``). A row
names the item, not its contents: the sync reads the item as it is when asked,
so ten edits of one channel cost a box one copy of it.

A cursor is a sequence number, so numbers must be handed out in commit order: a
transaction that took 10 and commits after the one that took 11 would be missed
by a box that read up to 11 in between. Writers therefore take the table's lock
before they add (PostgreSQL; SQLite has one writer at a time anyway). The
writes that land here are the content team's, a few a second at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import BigInteger, Index, Integer, String, delete, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, utcnow

# What a row names (``item``):
CHANNEL = "channel"  # a channel id
GUIDE_DAY = "guide_day"  # "<channel id>/<YYYY-MM-DD>": a UTC day of that channel's guide
ASSET = "asset"  # an asset id: its state or the packages holding it changed
ENTITLEMENTS = "entitlements"  # an account id: what the account may see changed
TITLE = "title"  # a catalog title id
KINDS = frozenset({CHANNEL, GUIDE_DAY, ASSET, ENTITLEMENTS, TITLE})


class Change(Base):
    __tablename__ = "changes"
    # "Rows after seq for this account or for everyone", and the prune by age.
    __table_args__ = (Index("ix_changes_at", "at"),)

    # SQLite numbers rows only through an INTEGER PRIMARY KEY.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    item: Mapped[str] = mapped_column(String(64))
    # Set for what only one account sees (its entitlements); None: every box.
    account_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


def guide_day(channel_id: str, day: date) -> str:
    """The item that names a channel's guide on one UTC day."""
    return f"{channel_id}/{day.isoformat()}"


def record(session: Session, kind: str, items: Iterable[str],
           account_id: str | None = None) -> None:
    """Note in the caller's transaction that these items changed."""
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    unique = list(dict.fromkeys(items))
    if not unique:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Numbers in commit order (see the module's doc); readers are not blocked.
        session.execute(text("LOCK TABLE changes IN EXCLUSIVE MODE"))
    # Taken under the lock: a later number never has an earlier time (sync.pages).
    at = utcnow()
    session.execute(insert(Change), [{"kind": kind, "item": item, "account_id": account_id,
                                      "at": at} for item in unique])


def last_seq(session: Session) -> int:
    return int(session.scalar(select(Change.seq).order_by(Change.seq.desc()).limit(1)) or 0)


def after(session: Session, seq: int, account_id: str, limit: int) -> list[Change]:
    """Up to ``limit`` rows after ``seq`` that concern every box or this account."""
    return list(session.scalars(
        select(Change).where(Change.seq > seq,
                             Change.account_id.is_(None) | (Change.account_id == account_id))
        .order_by(Change.seq).limit(limit)))


def prune(session: Session, older_than: datetime) -> int:
    """Forget rows written before ``older_than``: a cursor that old starts over."""
    result = session.execute(delete(Change).where(Change.at < older_than)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
