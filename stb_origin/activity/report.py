"""One playback report as a box sends it (``POST /v1/activity``), checked field by field.

    {"asset": "<id>", "position": 1234.5, "kind": "progress",
     "at": "2026-12-07T20:15:00+01:00", "profile": "kids"}

or ``"channel": "<id>"`` instead of ``asset`` (and no position). ``at`` is the
box's clock with its offset; ``profile`` names the household member watching,
as the box knows them (accounts keep no profiles: it is a short token, and
only ever compared).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stb_origin.activity.models import PROFILE_LENGTH
from stb_origin.db.types import ID
from stb_origin.web.errors import ApiError
from stb_origin.web.jsonbody import Fields

FIELDS = ("asset", "channel", "position", "kind", "at", "profile")
PROFILE = re.compile(rf"[A-Za-z0-9_-]{{1,{PROFILE_LENGTH}}}")
# Longer than any asset can be (STB_MAX_SOURCE_SECONDS is 6 hours by default).
MAX_POSITION_S = 7 * 86400.0
# A box that was offline may report a while later; one further back than this, or
# ahead of our clock by more than clock drift, has a wrong clock.
MAX_AGE = timedelta(days=1)
MAX_AHEAD = timedelta(minutes=5)


class Kind(enum.StrEnum):
    PROGRESS = "progress"
    STOP = "stop"  # the box stopped playing: its stream slot is freed at once


@dataclass(frozen=True)
class Report:
    kind: Kind
    profile: str
    at: datetime  # UTC
    asset_id: str | None = None
    channel_id: str | None = None
    position_s: float | None = None  # assets only

    @property
    def content_id(self) -> str:
        content = self.asset_id or self.channel_id
        assert content is not None, "parse always names one"
        return content


def parse(fields: Fields, now: datetime) -> Report:
    kind = _kind(fields.text("kind"))
    profile = profile_of(fields.text("profile"))
    at = _at(fields, now)
    asset, channel = fields.optional_text("asset"), fields.optional_text("channel")
    if (asset is None) == (channel is None):
        raise bad("exactly one of asset and channel is required")
    if channel is not None:
        if "position" in fields:
            raise bad("position: only for an asset (a channel is live)")
        return Report(kind, profile, at, channel_id=_id("channel", channel))
    return Report(kind, profile, at, asset_id=_id("asset", asset or ""),
                  position_s=_position(fields.raw("position")))


def profile_of(value: str) -> str:
    if not PROFILE.fullmatch(value):
        raise bad(f"profile: 1 to {PROFILE_LENGTH} letters, digits, _ or -")
    return value


def bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _kind(value: str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise bad(f"kind: one of {', '.join(Kind)}") from None


def _at(fields: Fields, now: datetime) -> datetime:
    at = fields.optional_time("at")
    if at is None:
        raise bad('missing required field "at": the time of the report, with an offset')
    at = at.astimezone(UTC)
    if not now - MAX_AGE <= at <= now + MAX_AHEAD:
        raise bad(f"at: the box's clock is wrong (more than {MAX_AHEAD.seconds // 60} minutes"
                  f" ahead of ours, or over {MAX_AGE.days} day old)")
    return at


def _id(name: str, value: str) -> str:
    if not ID.fullmatch(value):
        raise bad(f"{name}: an id, 32 hexadecimal digits")
    return value


def _position(value: object) -> float:
    # bool is an int to Python, never a position to a box.
    if value is None:
        raise bad('missing required field "position": seconds into the asset')
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad("position: expected a number of seconds")
    try:
        position = float(value)
    except OverflowError:  # an integer too large for a float
        position = math.inf
    if not (math.isfinite(position) and 0 <= position <= MAX_POSITION_S):
        raise bad(f"position: from 0 to {MAX_POSITION_S:.0f} seconds")
    return position
