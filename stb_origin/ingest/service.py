"""Accepting a source: store it, record the asset, queue its pipeline job."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

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
        unknown = package_records.unknown_names(session, packages)
    if unknown:
        raise UnknownPackages(unknown)
    asset_id = new_id()
    source_key = layout.source_key(asset_id, suffix)
    services.storage.put_file(source_key, path, "application/octet-stream")
    try:
        with services.db.session() as session:
            asset = Asset(id=asset_id, title=title[:500], source_key=source_key,
                          source_size=size)
            session.add(asset)
            session.flush()
            package_records.add_new_asset(session, packages, asset_id)
            session.flush()
            body = asset.to_json()
    except Exception:
        # No record, no source: a failed upload leaves nothing behind.
        services.storage.delete_prefix(f"sources/{asset_id}/")
        raise
    queue_run(services, asset_id)
    return body
