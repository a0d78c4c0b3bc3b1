"""Publishing one live segment: encrypt every rendition, store it, and only then list it.

The order is the guarantee: the segment's objects are in storage before its row
enters the index (``live.index``), and the row goes in only while this run
still holds the channel's epoch (``live.lease``), in the same transaction as
the channel's status. So a listed segment is always complete, and a run that
lost the channel lists nothing; what it stored under its own epoch's names is
never listed and goes with retention.

Keys rotate with wall-clock time: a new key for every ``key_rotation_s`` period
of the segments' program date-times (and for every run; 0: one key a run),
stored wrapped in the key store under the channel's id before the first segment
that uses it is listed, so the key path finds it by the time a player asks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from stb_origin import eventlog
from stb_origin.assets.channels import Channel, ChannelStatus
from stb_origin.drm import keystore
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.live import urls
from stb_origin.live.index import LiveSegment
from stb_origin.packager.encrypt import encrypt_file
from stb_origin.services import Services

SEGMENT_TYPE = "video/mp2t"


class Superseded(Exception):
    """Another run holds the channel now (its epoch moved on)."""


@dataclass(frozen=True)
class Position:
    """Where the next segment of a new run goes in the channel's index."""

    seq: int
    discontinuity: int
    not_before: datetime | None  # the previous run's last segment's end


def next_position(services: Services, channel_id: str) -> Position:
    """After the last listed segment, one discontinuity later (a new run is a new
    encoder: timestamps and codec parameters may change)."""
    table = LiveSegment.__table__.c
    with services.db.session() as session:
        last = session.execute(
            select(table.seq, table.discontinuity, table.starts_at, table.duration)
            .where(table.channel_id == channel_id).order_by(table.seq.desc()).limit(1)).first()
    if last is None:
        return Position(0, 0, None)
    return Position(last.seq + 1, last.discontinuity + 1,
                    last.starts_at + timedelta(seconds=last.duration))


class Publisher:
    def __init__(self, services: Services, channel_id: str, epoch: int,
                 key_rotation_s: int) -> None:
        self._services = services
        self.channel_id = channel_id
        self.epoch = epoch
        self._rotation_s = key_rotation_s
        self._key: ContentKey | None = None
        self._key_period: int | None = None
        # The status this run last told the event log: boxes hear changes only.
        self._announced: str | None = None

    def publish(self, seq: int, discontinuity: int, starts_at: datetime, duration: float,
                files: Mapping[str, Path], status: Mapping[str, Any]) -> None:
        """Store every rendition's file of segment ``seq`` encrypted, then list it.
        ``status``: the channel's columns to set with it (active source, bit rate...).
        Raises Superseded when the channel is no longer this run's."""
        key = self._key_for(starts_at)
        iv = os.urandom(16)
        storage = self._services.storage
        for rendition, path in files.items():
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".enc") as sealed:
                encrypt_file(path, Path(sealed.name), key.key, iv)
                storage.put_file(urls.segment_key(self.channel_id, rendition, self.epoch, seq),
                                 Path(sealed.name), SEGMENT_TYPE)
        row = LiveSegment(channel_id=self.channel_id, seq=seq, starts_at=starts_at,
                          duration=duration, discontinuity=discontinuity, epoch=self.epoch,
                          key_id=key.key_id, iv=iv.hex(), renditions=sorted(files))
        with self._services.db.session() as session:
            self._fenced(session, **{"status": ChannelStatus.LIVE.value, "error_message": None,
                                     **status,
                                     "last_segment_at": starts_at + timedelta(seconds=duration)})
            session.add(row)
        self._announce(ChannelStatus.LIVE.value, None)

    def report(self, **status: Any) -> None:
        """Set the channel's status columns, if it is still this run's."""
        with self._services.db.session() as session:
            self._fenced(session, **status)
        if "status" in status:
            self._announce(status["status"], status.get("error_message"))

    def _announce(self, status: str, message: str | None) -> None:
        """After the commit, and only when the status changed."""
        if status != self._announced:
            self._announced = status
            eventlog.publish(self._services.redis, eventlog.CHANNELS,
                             {"channel": self.channel_id, "status": status,
                              "message": message}, key=self.channel_id)

    def _fenced(self, session: Any, **values: Any) -> None:
        result = session.execute(
            update(Channel).where(Channel.id == self.channel_id, Channel.epoch == self.epoch)
            .values(**values))
        if result.rowcount != 1:
            raise Superseded(self.channel_id)

    def _key_for(self, starts_at: datetime) -> ContentKey:
        # 0: one key for the whole run.
        period = int(starts_at.timestamp()) // self._rotation_s if self._rotation_s else 0
        if self._key is None or period != self._key_period:
            key = generate_key()
            with self._services.db.session() as session:
                keystore.store(session, self.channel_id, [key], self._services.envelope)
            self._key, self._key_period = key, period
        return self._key
