"""Accounts, users, devices, packages and entitlements: the tables.

An account is the unit that owns things: its users (a household's members, or
the content team's staff), its devices (bounded by the device limit) and its
entitlements (a package for a window of time). A package is a named set of
assets and live channels; an asset joins a package through ``package_assets``,
a channel through ``package_channels``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, new_id, utcnow


class Role(enum.StrEnum):
    SUBSCRIBER = "subscriber"
    EDITOR = "editor"
    ADMIN = "admin"


class DeviceState(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Written by every device registration: the UPDATE is the account's lock
    # (a row lock on PostgreSQL, the write lock on SQLite), so the device count
    # that follows it cannot race another registration.
    devices_changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey(Account.id), index=True)
    # Stored lower-cased: one address, one user.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.SUBSCRIBER.value)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, account_id={self.account_id!r}, role={self.role!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account_id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "has_password": self.password_hash is not None,
            "created_at": iso(self.created_at),
        }


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        # One active registration per box and account; revoked rows stay as history.
        Index("uq_devices_active_serial", "account_id", "serial", unique=True,
              sqlite_where=text("state = 'active'"),
              postgresql_where=text("state = 'active'")),
        Index("ix_devices_account_created", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey(Account.id))
    serial: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    # {"max_width": int|null, "max_height": int|null, "codecs": [str, ...]}
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=DeviceState.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"Device(id={self.id!r}, account_id={self.account_id!r}, state={self.state!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account_id,
            "serial": self.serial,
            "model": self.model,
            "capabilities": self.capabilities,
            "state": self.state,
            "created_at": iso(self.created_at),
            "last_seen_at": iso(self.last_seen_at),
            "revoked_at": iso(self.revoked_at),
        }


class Package(Base):
    __tablename__ = "packages"

    # The name is the package's identity (a tier such as "premium"): it appears
    # in URLs and entitlements, so it never changes.
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "created_at": iso(self.created_at)}


class PackageAsset(Base):
    __tablename__ = "package_assets"

    package_name: Mapped[str] = mapped_column(ForeignKey(Package.name), primary_key=True)
    # Deleting an asset takes it out of every package.
    asset_id: Mapped[str] = mapped_column(ForeignKey(Asset.id, ondelete="CASCADE"),
                                          primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"package": self.package_name, "asset": self.asset_id,
                "added_at": iso(self.added_at)}


class PackageChannel(Base):
    __tablename__ = "package_channels"

    package_name: Mapped[str] = mapped_column(ForeignKey(Package.name), primary_key=True)
    # Deleting a channel takes it out of every package.
    channel_id: Mapped[str] = mapped_column(ForeignKey(Channel.id, ondelete="CASCADE"),
                                            primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Entitlement(Base):
    __tablename__ = "entitlements"
    __table_args__ = (
        Index("ix_entitlements_account_package", "account_id", "package_name"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey(Account.id))
    package_name: Mapped[str] = mapped_column(ForeignKey(Package.name))
    # Half-open window [valid_from, valid_until); no end means open-ended.
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account_id,
            "package": self.package_name,
            "valid_from": iso(self.valid_from),
            "valid_until": iso(self.valid_until),
            "created_at": iso(self.created_at),
        }

