"""Decide what an import does, before anything is written: a pure function of the
parsed file, the channel mapping and the time.

Every listing is either accepted or skipped with a reason:

- ``unknown_channel``: its XMLTV channel is mapped to no channel;
- ``bad_time``: a start or stop that is not ``YYYYMMDDhhmm[ss] [+zzzz]``;
- ``no_stop``: no stop, and no later programme on the channel to end it (a
  missing stop is the next programme's start, as XMLTV grabbers mean it);
- ``end_before_start``: stop <= start;
- ``absurd_time``: before 1970, starting more than a year from now, or longer
  than 24 hours (which also bounds the guide's window queries);
- ``overlap``: it starts before the programme before it on the same channel
  ends. The earlier programme wins, being the one already on air when the later
  would start; ties go to the first in the file. A skipped listing never hides
  another: overlaps are checked against accepted programmes only.

The accepted programmes of each channel then replace whatever the channel had
in their span, from the first start to the last end (``guide.store``): importing
the same file twice gives the same guide.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stb_origin.guide.xmltv import Document, Listing

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=366)
MAX_LENGTH = timedelta(hours=24)
# How many skipped listings a report names one by one; the counts cover all.
REPORTED_SKIPS = 100


@dataclass(frozen=True)
class Accepted:
    channel_id: str
    start: datetime
    end: datetime
    listing: Listing


@dataclass(frozen=True)
class Skipped:
    reason: str
    message: str
    listing: Listing

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message,
                "xmltv_channel": self.listing.xmltv_channel, "start": self.listing.raw_start,
                "title": self.listing.title, "line": self.listing.line}


@dataclass
class Plan:
    accepted: list[Accepted] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def spans(self) -> dict[str, tuple[datetime, datetime]]:
        """Per channel, the span its accepted programmes cover: what they replace."""
        spans: dict[str, tuple[datetime, datetime]] = {}
        for item in self.accepted:
            first, last = spans.get(item.channel_id, (item.start, item.end))
            spans[item.channel_id] = (min(first, item.start), max(last, item.end))
        return spans

    def report(self, replaced: int) -> dict[str, Any]:
        counts = Counter(s.reason for s in self.skipped)
        return {
            "imported": len(self.accepted),
            "replaced": replaced,
            "channels": len({a.channel_id for a in self.accepted}),
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(sorted(counts.items())),
            "problems": [s.to_json() for s in self.skipped[:REPORTED_SKIPS]],
        }


def plan_import(document: Document, mapping: Mapping[str, str], now: datetime) -> Plan:
    plan = Plan()
    by_channel: dict[str, list[Listing]] = defaultdict(list)
    for listing in document.listings:
        channel_id = mapping.get(listing.xmltv_channel)
        if channel_id is None:
            plan.skipped.append(Skipped("unknown_channel", "XMLTV channel"
                                        f" {listing.xmltv_channel[:100]!r} is mapped to no"
                                        " channel (PUT /v1/guide/mappings/{xmltv_id})",
                                        listing))
            continue
        if listing.start is None:
            plan.skipped.append(Skipped("bad_time", f"start {listing.raw_start[:40]!r} is not"
                                        " YYYYMMDDhhmm[ss] [+zzzz]", listing))
            continue
        if listing.raw_stop is not None and listing.stop is None:
            plan.skipped.append(Skipped("bad_time", f"stop {listing.raw_stop[:40]!r} is not"
                                        " YYYYMMDDhhmm[ss] [+zzzz]", listing))
            continue
        by_channel[channel_id].append(listing)
    for channel_id, listings in by_channel.items():
        _plan_channel(plan, channel_id, listings, now)
    plan.accepted.sort(key=lambda a: (a.channel_id, a.start))
    return plan


def _plan_channel(plan: Plan, channel_id: str, listings: list[Listing], now: datetime) -> None:
    # Stable: listings starting together stay in file order, and the first wins.
    ordered = sorted(listings, key=lambda item: item.start or EPOCH)
    previous: Accepted | None = None
    for index, listing in enumerate(ordered):
        assert listing.start is not None
        start, end = listing.start, listing.stop
        if end is None:
            # Sorted: the first later start is a step or two on, not a scan.
            end = next((ordered[j].start for j in range(index + 1, len(ordered))
                        if (ordered[j].start or start) > start), None)
            if end is None:
                plan.skipped.append(Skipped("no_stop", "no stop time, and no later programme"
                                            " on the channel to end it", listing))
                continue
        problem = _absurd(start, end, now)
        if problem is not None:
            plan.skipped.append(Skipped(*problem, listing))
            continue
        if previous is not None and start < previous.end:
            plan.skipped.append(Skipped(
                "overlap", f"overlaps {previous.listing.title[:100]!r}"
                f" ({previous.start.isoformat()} to {previous.end.isoformat()}), which is kept",
                listing))
            continue
        previous = Accepted(channel_id, start, end, listing)
        plan.accepted.append(previous)


def _absurd(start: datetime, end: datetime, now: datetime) -> tuple[str, str] | None:
    if end <= start:
        return "end_before_start", f"ends ({end.isoformat()}) before it starts" \
                                   f" ({start.isoformat()})"
    if start < EPOCH:
        return "absurd_time", f"starts before 1970 ({start.isoformat()})"
    if start > now + MAX_AHEAD:
        return "absurd_time", f"starts more than a year from now ({start.isoformat()})"
    if end - start > MAX_LENGTH:
        return "absurd_time", f"lasts {end - start}, more than 24 hours"
    return None
