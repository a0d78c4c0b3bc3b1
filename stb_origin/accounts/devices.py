"""Devices: registration under the account's device limit, revocation, last seen."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import DeviceLimitReached, InvalidValue, NotFound
from stb_origin.accounts.models import Account, Device, DeviceState
from stb_origin.db.paging import newest_first
from stb_origin.db.types import UtcDateTime, new_id, utcnow
from stb_origin.web.errors import unknown_fields_message

_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_MODEL = re.compile(r"[\x20-\x7e]{1,128}")
# RFC 6381 codec strings: "avc1.640028", "mp4a.40.2", "hvc1.1.6.L93.B0", "ec-3".
_CODEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
MAX_CODECS = 32
# VIDEO-RANGE values a screen may show besides SDR, which every one shows.
HDR_RANGES = ("PQ", "HLG")
MAX_DIMENSION = 16384
# last_seen_at is written at most this often, so that checking a device on
# every request does not turn every request into a write.
TOUCH_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Capabilities:
    max_width: int | None = None
    max_height: int | None = None
    codecs: tuple[str, ...] = ()
    # The HDR ranges the box shows (PQ: HDR10, HLG); none: SDR only, the safe
    # guess for a box that does not say.
    video_ranges: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_width", "max_height"):
            value = getattr(self, name)
            if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int)
                    or not 1 <= value <= MAX_DIMENSION):
                raise InvalidValue(
                    f"capabilities.{name}: an integer from 1 to {MAX_DIMENSION}, or null")
        if len(self.codecs) > MAX_CODECS:
            raise InvalidValue(f"capabilities.codecs: at most {MAX_CODECS}")
        for codec in self.codecs:
            if not _CODEC.fullmatch(codec):
                raise InvalidValue(
                    f"capabilities.codecs: {codec!r} is not a codec string (e.g. avc1.640028)")
        if not set(self.video_ranges) <= set(HDR_RANGES):
            raise InvalidValue(f"capabilities.video_ranges: only {', '.join(HDR_RANGES)}")

    @classmethod
    def from_json(cls, data: object) -> Capabilities:
        if not isinstance(data, Mapping):
            raise InvalidValue("capabilities: expected an object")
        allowed = ("max_width", "max_height", "codecs", "video_ranges")
        unknown = set(data) - set(allowed)
        if unknown:
            raise InvalidValue(f"capabilities: {unknown_fields_message(unknown, allowed)}")
        lists = {name: data.get(name, []) for name in ("codecs", "video_ranges")}
        for name, items in lists.items():
            if not isinstance(items, list) or not all(isinstance(c, str) for c in items):
                raise InvalidValue(f"capabilities.{name}: expected a list of strings")
        return cls(max_width=data.get("max_width"), max_height=data.get("max_height"),
                   codecs=tuple(dict.fromkeys(lists["codecs"])),
                   video_ranges=tuple(dict.fromkeys(lists["video_ranges"])))

    def to_json(self) -> dict[str, Any]:
        return {"max_width": self.max_width, "max_height": self.max_height,
                "codecs": list(self.codecs), "video_ranges": list(self.video_ranges)}


def check_identity(serial: str, model: str) -> None:
    """InvalidValue unless the serial and model are ones a device may have."""
    if not _SERIAL.fullmatch(serial):
        raise InvalidValue("serial: 1 to 64 letters, digits or . _ : - (starting with one"
                           " letter or digit)")
    if not _MODEL.fullmatch(model) or not model.strip():
        raise InvalidValue("model: 1 to 128 printable ASCII characters")


def register_device(session: Session, account_id: str, serial: str, model: str,
                    capabilities: Capabilities, *, max_devices: int,
                    at: datetime | None = None) -> Device:
    """A new active device of the account, unless it already has ``max_devices``.

    A box whose serial is already active in the account gets that same device
    back (model and capabilities refreshed) without using another slot, so a
    factory-reset box can sign in again without being revoked first.
    """
    check_identity(serial, model)
    now = at or utcnow()
    # Lock the account first: concurrent registrations for it queue here, so
    # the count below cannot be stale when we insert.
    locked = session.execute(
        update(Account).where(Account.id == account_id).values(devices_changed_at=now))
    if getattr(locked, "rowcount", 0) != 1:
        raise NotFound("no such account")
    device = find_active_device(session, account_id, serial)
    if device is not None:
        device.model = model
        device.capabilities = capabilities.to_json()
        device.last_seen_at = now
        return device
    active = session.scalar(
        select(func.count()).select_from(Device)
        .where(Device.account_id == account_id, Device.state == DeviceState.ACTIVE.value))
    if (active or 0) >= max_devices:
        raise DeviceLimitReached(max_devices)
    device = Device(id=new_id(), account_id=account_id, serial=serial, model=model,
                    capabilities=capabilities.to_json(), state=DeviceState.ACTIVE.value,
                    created_at=now, last_seen_at=now)
    session.add(device)
    session.flush()
    return device


def find_active_device(session: Session, account_id: str, serial: str) -> Device | None:
    return session.scalar(select(Device).where(
        Device.account_id == account_id, Device.serial == serial,
        Device.state == DeviceState.ACTIVE.value))


def get_device(session: Session, device_id: str) -> Device | None:
    return session.get(Device, device_id)


def page_devices(session: Session, limit: int, after: str | None,
                 account_id: str | None = None) -> list[Device]:
    query = select(Device)
    if account_id is not None:
        query = query.where(Device.account_id == account_id)
    return newest_first(session, Device, query, limit, after)


def revoke_device(session: Session, device_id: str, at: datetime | None = None) -> Device:
    """Revoke for good (idempotent: a second call keeps the first revoked_at)."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound("no such device")
    if device.state == DeviceState.ACTIVE.value:
        device.state = DeviceState.REVOKED.value
        device.revoked_at = at or utcnow()
        session.flush()
    return device


def is_device_active(session: Session, device_id: str) -> bool:
    state = session.scalar(select(Device.state).where(Device.id == device_id))
    return state == DeviceState.ACTIVE.value


def touch_device(session: Session, device_id: str, at: datetime | None = None) -> bool:
    """Record that an active device was seen; False when nothing was written
    (unknown, revoked, or already seen within TOUCH_GRANULARITY)."""
    now = at or utcnow()
    result = session.execute(
        update(Device)
        .where(Device.id == device_id, Device.state == DeviceState.ACTIVE.value,
               Device.last_seen_at.is_(None) | (Device.last_seen_at < now - TOUCH_GRANULARITY))
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False))
    return getattr(result, "rowcount", 0) == 1


def touch_devices(conn: Connection, seen: Mapping[str, datetime]) -> None:
    """touch_device for many devices in one statement (the key audit's batches)."""
    table = Device.__table__.c
    stale = bindparam("b_stale", type_=UtcDateTime())
    statement = (
        update(cast(Table, Device.__table__))
        .where(table.id == bindparam("b_device"), table.state == DeviceState.ACTIVE.value,
               table.last_seen_at.is_(None) | (table.last_seen_at < stale))
        .values(last_seen_at=bindparam("b_at", type_=UtcDateTime())))
    conn.execute(statement, [{"b_device": device_id, "b_at": at,
                              "b_stale": at - TOUCH_GRANULARITY}
                             for device_id, at in seen.items()])


@dataclass(frozen=True)
class DeviceRow:
    """What authorising a key fetch needs of a device, read without the ORM."""

    account_id: str
    active: bool
    capabilities: Capabilities
    last_seen_at: datetime | None


def read_device(conn: Connection, device_id: str) -> DeviceRow | None:
    table = Device.__table__.c
    found = conn.execute(select(table.account_id, table.state, table.capabilities,
                                table.last_seen_at).where(table.id == device_id)).first()
    if found is None:
        return None
    return DeviceRow(account_id=found.account_id,
                     active=found.state == DeviceState.ACTIVE.value,
                     capabilities=Capabilities.from_json(found.capabilities),
                     last_seen_at=found.last_seen_at)
