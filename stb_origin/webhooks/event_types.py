"""Which events of the event log a webhook can subscribe to, and the body each one sends.

Derived from what the publishers put in the log (``eventlog.TOPICS``): an asset's
status and its deletion (its progress ticks are left out: a webhook per percent helps nobody),
a live channel's status, catalog titles, guide imports and entitlements.
Device commands are for the device only and never leave the system.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stb_origin import eventlog

EVENT_TYPES = (
    "asset.queued",  # waiting for its next attempt after a failed one
    "asset.processing",  # a run started on it
    "asset.ready",
    "asset.failed",
    "asset.deleted",  # DELETE /v1/assets/{id}: its playlists, segments and keys are gone
    "channel.starting",
    "channel.live",
    "channel.no_signal",
    "channel.failed",
    "title.created",
    "title.updated",
    "title.deleted",
    "guide.imported",
    "entitlement.granted",
    "entitlement.revoked",
)


def event_type(event: eventlog.Event) -> str | None:
    """The webhook event type of a log entry, or None for one no webhook hears."""
    data = event.data
    if event.topic == eventlog.ASSETS:
        if data.get("status") == "processing" and data.get("progress"):
            return None
        name = f"asset.{data.get('status')}"
    elif event.topic == eventlog.CHANNELS:
        name = f"channel.{data.get('status')}"
    elif event.topic == eventlog.CATALOG:
        name = f"title.{data.get('change')}"
    elif event.topic == eventlog.GUIDE:
        name = "guide.imported"
    elif event.topic == eventlog.ENTITLEMENTS:
        name = f"entitlement.{data.get('action')}"
    else:
        return None
    return name if name in EVENT_TYPES else None


def body(event: eventlog.Event, type_: str) -> str:
    """The JSON every attempt of a delivery sends: ``{id, type, created_at, data}``;
    ``id`` is the event's offset in the log, the same for every subscription."""
    millis = int(event.offset.split("-", 1)[0])
    created = datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")
    document: dict[str, Any] = {"id": event.offset, "type": type_, "created_at": created,
                                "data": event.data}
    return json.dumps(document, separators=(",", ":"))
