"""Packages: named sets of assets and channels (a tier such as "premium") that
entitlements grant.

An asset joins a package by id (``add_asset``); it may sit in several packages,
and leaves all of them when it is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.accounts.models import Package, PackageAsset, PackageChannel
from stb_origin.assets import records
from stb_origin.db import changes

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_TITLE = 200


def create_package(session: Session, name: str, title: str = "") -> Package:
    if not _NAME.fullmatch(name):
        raise InvalidValue("name: 1 to 64 lower-case letters, digits, _ or -"
                           " (starting with a letter or digit)")
    if len(title) > MAX_TITLE:
        raise InvalidValue(f"title: at most {MAX_TITLE} characters")
    if session.get(Package, name) is not None:
        raise AlreadyExists("a package with this name exists")
    package = Package(name=name, title=title)
    session.add(package)
    _flush(session, "a package with this name exists")
    return package


def get_package(session: Session, name: str) -> Package | None:
    return session.get(Package, name)


def page_packages(session: Session, limit: int, after: str | None) -> list[Package]:
    query = select(Package).order_by(Package.name)
    if after is not None:
        query = query.where(Package.name > after)
    return list(session.scalars(query.limit(limit)))


def add_asset(session: Session, name: str, asset_id: str) -> tuple[PackageAsset, bool]:
    """Put an existing asset in the package; True when it was not there yet."""
    if session.get(Package, name) is None:
        raise NotFound("no such package")
    if records.get(session, asset_id) is None:
        raise NotFound("no such asset")
    link = session.get(PackageAsset, (name, asset_id))
    if link is not None:
        return link, False
    link = PackageAsset(package_name=name, asset_id=asset_id)
    session.add(link)
    _flush(session, "the asset was just added to this package")
    changes.record(session, changes.ASSET, [asset_id])
    return link, True


def unknown_names(session: Session, names: Collection[str]) -> list[str]:
    """The names among ``names`` that are no package, sorted."""
    if not names:
        return []
    known = set(session.scalars(select(Package.name).where(Package.name.in_(list(names)))))
    return sorted(set(names) - known)


def add_new_asset(session: Session, names: Collection[str], asset_id: str) -> None:
    """Put an asset being created in this transaction into the named packages
    (they exist: see ``unknown_names``; a foreign key refuses one that does not)."""
    session.add_all(PackageAsset(package_name=name, asset_id=asset_id) for name in names)
    changes.record(session, changes.ASSET, [asset_id])


def remove_asset(session: Session, name: str, asset_id: str) -> bool:
    result = session.execute(delete(PackageAsset).where(
        PackageAsset.package_name == name, PackageAsset.asset_id == asset_id))
    removed = getattr(result, "rowcount", 0) == 1
    if removed:
        changes.record(session, changes.ASSET, [asset_id])
    return removed


def page_assets(session: Session, name: str, limit: int, after: str | None) -> list[PackageAsset]:
    """The package's asset links, ordered by asset id."""
    query = select(PackageAsset).where(PackageAsset.package_name == name)
    if after is not None:
        query = query.where(PackageAsset.asset_id > after)
    return list(session.scalars(query.order_by(PackageAsset.asset_id).limit(limit)))


def read_packages_holding(conn: Connection, content_id: str) -> frozenset[str]:
    """The packages holding an asset or a channel (their ids share one namespace)."""
    assets, channels = PackageAsset.__table__.c, PackageChannel.__table__.c
    return frozenset(conn.scalars(
        select(assets.package_name).where(assets.asset_id == content_id)
        .union(select(channels.package_name).where(channels.channel_id == content_id))))


def set_channel_packages(session: Session, channel_id: str, names: Collection[str]) -> None:
    """Make the channel a member of exactly these packages (they exist: see
    ``unknown_names``)."""
    session.execute(delete(PackageChannel).where(PackageChannel.channel_id == channel_id))
    session.add_all(PackageChannel(package_name=name, channel_id=channel_id)
                    for name in sorted(set(names)))
    session.flush()


def packages_of_channels(session: Session,
                         channel_ids: Collection[str]) -> dict[str, list[str]]:
    """The packages holding each channel, by name; in one query however many."""
    held: dict[str, list[str]] = {channel_id: [] for channel_id in channel_ids}
    if held:
        rows = session.execute(
            select(PackageChannel.channel_id, PackageChannel.package_name)
            .where(PackageChannel.channel_id.in_(list(held)))
            .order_by(PackageChannel.package_name))
        for channel_id, name in rows:
            held[channel_id].append(name)
    return held


def _flush(session: Session, conflict: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request inserted the same key after our check; the
        # caller's transaction is rolled back with this error.
        raise AlreadyExists(conflict) from None
