"""Accepting a source: store it, record the asset, queue its pipeline job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stb_origin.assets.records import Asset, mark_failed
from stb_origin.db.types import new_id
from stb_origin.queues import enqueue_pipeline
from stb_origin.services import Services
from stb_origin.storage import layout


def accept_source(services: Services, path: Path, suffix: str, title: str,
                  size: int) -> dict[str, Any]:
    """Store the file at path as a new asset's source and queue it; returns the asset JSON."""
    asset_id = new_id()
    source_key = layout.source_key(asset_id, suffix)
    services.storage.put_file(source_key, path, "application/octet-stream")
    with services.db.session() as session:
        asset = Asset(id=asset_id, title=title[:500], source_key=source_key, source_size=size)
        session.add(asset)
        session.flush()
        body = asset.to_json()
    try:
        enqueue_pipeline(services.queue, services.settings, asset_id)
    except Exception:
        # Nothing is lost: the record says why and the source stays for a re-run.
        mark_failed(services.db, asset_id, "enqueue_failed", "the job queue is unavailable")
        raise
    return body
