"""After a catalog write commits: listening boxes hear which title changed
(``eventlog.CATALOG``), and reread it or sync."""

from __future__ import annotations

import anyio
from starlette.requests import Request

from stb_origin import eventlog
from stb_origin.web.http import services_of


async def title_changed(request: Request, title_id: str, change: str) -> None:
    """``change``: created, updated or deleted."""
    await anyio.to_thread.run_sync(lambda: eventlog.publish(
        services_of(request).redis, eventlog.CATALOG, {"title": title_id, "change": change},
        key=title_id))
