"""Reports into rows, and the rows boxes show: continue watching, recent channels.

Every write is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` (SQLite and
PostgreSQL alike): atomic, so concurrent reports for one item leave one row,
and the row moves only for a report whose ``reported_at`` is later than the
one it holds. A late report, an old one retried, or two boxes racing cannot
move a resume point backwards in time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from stb_origin.accounts.models import Entitlement, PackageAsset, PackageChannel
from stb_origin.activity.models import ChannelVisit, ResumePoint
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset, Status
from stb_origin.db.paging import UnknownCursor
from stb_origin.db.types import utcnow

# Watched this far into its duration, an asset is finished: credits are not watched.
FINISHED_AT = 0.95


def record_asset(session: Session, account_id: str, profile: str, asset: Asset,
                 position_s: float, at: datetime, device_id: str) -> ResumePoint:
    """The resume point after this report: the report's, or a later one already kept."""
    duration = asset.duration_s
    finished = bool(duration) and position_s >= FINISHED_AT * (duration or 0)
    _upsert(session, ResumePoint, {
        "account_id": account_id, "profile": profile, "asset_id": asset.id,
        "position_s": position_s, "finished": finished, "reported_at": at,
        "device_id": device_id, "updated_at": utcnow()})
    point = session.get(ResumePoint, (account_id, profile, asset.id), populate_existing=True)
    assert point is not None, "upserted just now, in this transaction"
    return point


def record_channel(session: Session, account_id: str, profile: str, channel_id: str,
                   at: datetime, device_id: str) -> ChannelVisit:
    _upsert(session, ChannelVisit, {
        "account_id": account_id, "profile": profile, "channel_id": channel_id,
        "reported_at": at, "device_id": device_id, "updated_at": utcnow()})
    visit = session.get(ChannelVisit, (account_id, profile, channel_id), populate_existing=True)
    assert visit is not None, "upserted just now, in this transaction"
    return visit


def continue_row(session: Session, account_id: str, profile: str, now: datetime,
                 limit: int, after: str | None) -> list[tuple[ResumePoint, Asset]]:
    """Assets started and not finished, still ready and entitled now, most recent first;
    ``after``: the asset id that ended the previous page."""
    query = (
        select(ResumePoint, Asset).join(Asset, Asset.id == ResumePoint.asset_id)
        .where(ResumePoint.account_id == account_id, ResumePoint.profile == profile,
               ResumePoint.finished.is_(False), Asset.status == Status.READY.value,
               _entitled(account_id, now, PackageAsset.package_name,
                         PackageAsset.asset_id == ResumePoint.asset_id))
        .order_by(ResumePoint.reported_at.desc(), ResumePoint.asset_id.desc()))
    if after is not None:
        cursor = session.get(ResumePoint, (account_id, profile, after))
        query = query.where(_before(cursor, ResumePoint.reported_at, ResumePoint.asset_id,
                                    after))
    return [(point, asset) for point, asset in session.execute(query.limit(limit))]


def recent_channels(session: Session, account_id: str, profile: str, now: datetime,
                    limit: int, after: str | None) -> list[tuple[ChannelVisit, Channel]]:
    """Channels watched, still entitled now, most recent first."""
    query = (
        select(ChannelVisit, Channel).join(Channel, Channel.id == ChannelVisit.channel_id)
        .where(ChannelVisit.account_id == account_id, ChannelVisit.profile == profile,
               _entitled(account_id, now, PackageChannel.package_name,
                         PackageChannel.channel_id == ChannelVisit.channel_id))
        .order_by(ChannelVisit.reported_at.desc(), ChannelVisit.channel_id.desc()))
    if after is not None:
        cursor = session.get(ChannelVisit, (account_id, profile, after))
        query = query.where(_before(cursor, ChannelVisit.reported_at, ChannelVisit.channel_id,
                                    after))
    return [(visit, channel) for visit, channel in session.execute(query.limit(limit))]


def _upsert(session: Session, entity: type[ResumePoint] | type[ChannelVisit],
            values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(entity).values(values)
    keys = [column.name for column in entity.__table__.primary_key]
    session.execute(statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in values if name not in keys},
        where=entity.__table__.c.reported_at < statement.excluded.reported_at))


def _entitled(account_id: str, now: datetime, package: InstrumentedAttribute[str],
              holds: ColumnElement[bool]) -> ColumnElement[bool]:
    """Some package holding the item (``holds``) is granted to the account now: what
    ``accounts.entitlements.is_entitled`` decides, for every row of a query at once."""
    return exists().where(
        holds, Entitlement.package_name == package, Entitlement.account_id == account_id,
        Entitlement.valid_from <= now,
        Entitlement.valid_until.is_(None) | (Entitlement.valid_until > now))


def _before(cursor: ResumePoint | ChannelVisit | None, reported_at: Any, item: Any,
            after: str) -> ColumnElement[bool]:
    """Rows after ``cursor`` in the (reported_at, item) order, newest first."""
    if cursor is None:
        raise UnknownCursor()
    return (reported_at < cursor.reported_at) | (
        (reported_at == cursor.reported_at) & (item < after))
