"""Entitlements: an account may play a package's assets within a window of time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import InvalidValue, NotFound
from stb_origin.accounts.models import Account, Entitlement, Package
from stb_origin.accounts.packages import read_packages_holding
from stb_origin.db import changes
from stb_origin.db.paging import newest_first
from stb_origin.db.types import new_id, utcnow


def grant(session: Session, account_id: str, package: str, valid_from: datetime | None = None,
          valid_until: datetime | None = None) -> Entitlement:
    """Entitle the account to the package for [valid_from, valid_until); no end
    means open-ended, no start means from now."""
    start = valid_from or utcnow()
    for name, value in (("valid_from", start), ("valid_until", valid_until)):
        if value is not None and value.tzinfo is None:
            raise InvalidValue(f"{name}: a time zone offset is required")
    start = start.astimezone(UTC)
    valid_until = valid_until.astimezone(UTC) if valid_until is not None else None
    if valid_until is not None and valid_until <= start:
        raise InvalidValue("valid_until: must be after valid_from")
    if session.get(Account, account_id) is None:
        raise NotFound("no such account")
    if session.get(Package, package) is None:
        raise NotFound("no such package")
    entitlement = Entitlement(id=new_id(), account_id=account_id, package_name=package,
                              valid_from=start, valid_until=valid_until)
    session.add(entitlement)
    session.flush()
    changes.record(session, changes.ENTITLEMENTS, [account_id], account_id)
    return entitlement


def revoke(session: Session, entitlement_id: str) -> Entitlement:
    """End the entitlement now (it stays listed, as history); the one revoked."""
    entitlement = session.get(Entitlement, entitlement_id, with_for_update=True)
    if entitlement is None:
        raise NotFound("no such entitlement")
    now = utcnow()
    if entitlement.valid_until is None or entitlement.valid_until > now:
        # One that has not begun ends before it begins, as if never granted.
        entitlement.valid_until = max(now, entitlement.valid_from)
        session.flush()
        changes.record(session, changes.ENTITLEMENTS, [entitlement.account_id],
                       entitlement.account_id)
    return entitlement


def get_entitlement(session: Session, entitlement_id: str) -> Entitlement | None:
    return session.get(Entitlement, entitlement_id)


def page_entitlements(session: Session, limit: int, after: str | None,
                      account_id: str | None = None) -> list[Entitlement]:
    query = select(Entitlement)
    if account_id is not None:
        query = query.where(Entitlement.account_id == account_id)
    return newest_first(session, Entitlement, query, limit, after)


def not_over(session: Session, account_id: str, at: datetime) -> list[Entitlement]:
    """The account's entitlements holding at ``at`` or later, by start."""
    return list(session.scalars(select(Entitlement).where(
        Entitlement.account_id == account_id,
        Entitlement.valid_until.is_(None) | (Entitlement.valid_until > at))
        .order_by(Entitlement.valid_from, Entitlement.id)))


def is_entitled(session: Session, account_id: str, content_id: str, at: datetime) -> bool:
    """Whether some package holding the asset or channel is granted to the account
    at ``at``."""
    if at.tzinfo is None:
        raise ValueError("at: a time zone is required")
    holding = read_packages_holding(session.connection(), content_id)
    if not holding:
        return False
    query = (
        select(Entitlement.id)
        .where(Entitlement.account_id == account_id, Entitlement.package_name.in_(holding),
               Entitlement.valid_from <= at,
               Entitlement.valid_until.is_(None) | (Entitlement.valid_until > at))
        .limit(1)
    )
    return session.scalar(query) is not None


@dataclass(frozen=True)
class Window:
    """One entitlement as the key path caches it: a package for [valid_from, valid_until)."""

    package: str
    valid_from: datetime
    valid_until: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


def read_windows(conn: Connection, account_id: str) -> tuple[Window, ...]:
    """Every entitlement of the account, past and future too: which of them holds is
    decided at the time of each use, so a cached copy expires with them."""
    table = Entitlement.__table__.c
    found = conn.execute(select(table.package_name, table.valid_from, table.valid_until)
                         .where(table.account_id == account_id))
    return tuple(Window(row.package_name, row.valid_from, row.valid_until) for row in found)
