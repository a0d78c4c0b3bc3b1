"""Accepting a source: store it, record the asset, queue its pipeline job."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from stb_origin.accounts import packages as package_records
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id
from stb_origin.pipeline import queue_run
from stb_origin.services import Services
from stb_origin.storage import layout


class UnknownPackages(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def accept_source(services: Services, path: Path, suffix: str, title: str,
                  size: int, packages: Collection[str] = ()) -> dict[str, Any]:
    """Store the file at path as a new asset's source, in ``packages`` from the
    same transaction as its record, and queue it; returns the asset JSON.

    UnknownPackages, with nothing stored or queued, when a package does not exist.
    """
    with services.db.session() as session:
        _check_packages(session, packages)
    asset_id = new_id()
    source_key = layout.source_key(asset_id, suffix)
    services.storage.put_file(source_key, path, "application/octet-stream")
    try:
        body = accept_stored_source(services, asset_id, source_key, title, size, packages)
    except Exception:
        # No record, no source: a failed upload leaves nothing behind.
        services.storage.delete_prefix(layout.source_prefix(asset_id))
        raise
    return body


def accept_stored_source(services: Services, asset_id: str, source_key: str, title: str,
                         size: int, packages: Collection[str] = (),
                         also: Callable[[Session], None] = lambda _session: None,
                         ) -> dict[str, Any]:
    """Record asset ``asset_id``, whose source is already at source_key, and queue it;
    ``also`` runs in the same transaction (a resumable upload marks itself finished
    there, so that the asset and the mark commit together). UnknownPackages, with
    nothing recorded, when a package does not exist."""
    with services.db.session() as session:
        _check_packages(session, packages)
        asset = Asset(id=asset_id, title=title[:500], source_key=source_key, source_size=size)
        session.add(asset)
        session.flush()
        package_records.add_new_asset(session, packages, asset_id)
        also(session)
        session.flush()
        body = asset.to_json()
    queue_run(services, asset_id)
    return body


def _check_packages(session: Session, packages: Collection[str]) -> None:
    unknown = package_records.unknown_names(session, packages)
    if unknown:
        raise UnknownPackages(unknown)
