"""An asset's status or progress changed: tell the event log (after the commit).

The content team's clients follow uploads through GET /v1/events instead of
polling GET /v1/assets/{id}. Best effort, like every event: the asset record
stays the truth.
"""

from __future__ import annotations

from redis import Redis

from stb_origin import eventlog

# Not a record's status (the record is gone): the last event of a deleted asset.
DELETED = "deleted"


def asset_changed(redis: Redis, asset_id: str, status: str, progress: int,
                  error_code: str | None = None) -> None:
    eventlog.publish(redis, eventlog.ASSETS,
                     {"asset": asset_id, "status": status, "progress": progress,
                      "error": error_code}, key=asset_id)
