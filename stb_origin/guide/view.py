"""What boxes get: programmes as JSON with their start-over and catch-up paths, and
how long a CDN may keep the answer.

Guide data is not secret: every answer is ``public`` and the same for every
caller, so the CDN shares one copy among all boxes (it must not key on the
Authorization header). The token check at the origin only keeps anonymous
clients off the database; a box that got an answer from the edge without one
learns only what the printed guide says.

An answer changes only when a programme starts, ends or leaves the channel's
DVR window (its paths appear or go), or when an import changes the guide. It is
kept until the first of those moments that can be computed (at most
``MAX_AGE_S``, so that an import shows within that), and revalidated with its
ETag after. Windows are whole hours, so that boxes asking at different minutes
share answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from stb_origin.assets.channels import Channel
from stb_origin.db.types import iso
from stb_origin.guide.models import Programme
from stb_origin.live.urls import catchup_master, startover_master
from stb_origin.origin.conditional import parse_etags

BUCKET = timedelta(hours=1)
MAX_AGE_S = 300


def floor_hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + BUCKET


def programme_json(programme: Programme, channel: Channel, now: datetime) -> dict[str, Any]:
    """A programme whose start is still in the channel's DVR window carries
    ``startover`` while it is on air and ``catchup`` once it has ended."""
    in_window = programme.starts_at >= now - timedelta(seconds=channel.dvr_window_s)
    on_air = programme.starts_at <= now < programme.ends_at
    ended = programme.ends_at <= now
    return {
        "id": programme.id,
        "channel": programme.channel_id,
        "start": iso(programme.starts_at),
        "end": iso(programme.ends_at),
        "title": programme.title,
        "subtitle": programme.subtitle,
        "description": programme.description,
        "categories": list(programme.categories),
        "episode": programme.episode,
        "rating": programme.rating,
        "icon": programme.icon_url,
        "startover": startover_master(channel.id, programme.starts_at)
        if in_window and on_air else None,
        "catchup": catchup_master(channel.id, programme.starts_at, programme.ends_at)
        if in_window and ended else None,
    }


def next_change(pairs: Iterable[tuple[Programme, Channel]], now: datetime) -> datetime:
    """The first moment after ``now`` at which one of these programmes' paths change."""
    soonest = now + timedelta(seconds=MAX_AGE_S)
    for programme, channel in pairs:
        leaves = programme.starts_at + timedelta(seconds=channel.dvr_window_s)
        for moment in (programme.starts_at, programme.ends_at, leaves):
            if now < moment < soonest:
                soonest = moment
    return soonest


def cacheable(request: Request, body: dict[str, Any], now: datetime,
              until: datetime) -> Response:
    """The JSON answer, public until ``until``, with an ETag; 304 when the box has it."""
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
    max_age = max(0, min(MAX_AGE_S, int((until - now).total_seconds())))
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag}
    tags = parse_etags(request.headers.get("if-none-match", "")) or []
    if "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags):
        return Response(status_code=304, headers=headers)
    return Response(encoded, media_type="application/json", headers=headers)
