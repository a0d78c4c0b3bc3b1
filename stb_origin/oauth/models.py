"""OAuth tables: clients, device authorizations, grants and the access tokens of a grant.

Times are Unix seconds, like the signing keys': compared the same way in Python
and in SQL on every engine, and easy to move in tests with an injected clock.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.accounts.models import Device, User
from stb_origin.db import Base


class ClientKind(enum.StrEnum):
    PUBLIC = "public"  # boxes: no secret, device grant and refresh
    CONFIDENTIAL = "confidential"  # third-party services: a secret, client credentials


class GrantType(enum.StrEnum):
    DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_CREDENTIALS = "client_credentials"


class AuthorizationState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    ISSUED = "issued"  # tokens were handed out: the device code is spent


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # scrypt, as for passwords; None for public clients
    secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated
    grant_types: Mapped[str] = mapped_column(String(255))  # space-separated
    created_at: Mapped[int] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"OAuthClient(id={self.id!r}, kind={self.kind!r})"

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def allows(self, grant: GrantType) -> bool:
        return grant.value in self.grant_types.split()

    def to_json(self) -> dict[str, Any]:
        return {"client_id": self.id, "name": self.name, "kind": self.kind,
                "scope": self.scopes, "grant_types": self.grant_types.split()}


class DeviceAuthorization(Base):
    """One run of the device grant: from the box's request to its tokens."""

    __tablename__ = "oauth_device_authorizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # SHA-256 of the device code: a copy of the table cannot poll for tokens.
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code: Mapped[str] = mapped_column(String(8), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey(OAuthClient.id))
    scopes: Mapped[str] = mapped_column(String(255))
    device_serial: Mapped[str] = mapped_column(String(64))
    device_model: Mapped[str] = mapped_column(String(128))
    device_capabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=AuthorizationState.PENDING.value)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    interval_s: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey(User.id), nullable=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey(Device.id), nullable=True)
    grant_id: Mapped[str | None] = mapped_column(String(32), nullable=True)

    def __repr__(self) -> str:
        return f"DeviceAuthorization(id={self.id!r}, state={self.state!r})"


class Grant(Base):
    """What a user granted a client on one device; its id is the refresh-token family.

    Only the newest refresh token of the family is good: any other genuine one
    presented again is a replay, and revokes the whole grant.
    """

    __tablename__ = "oauth_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey(OAuthClient.id))
    user_id: Mapped[str] = mapped_column(ForeignKey(User.id), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey(Device.id), index=True)
    scopes: Mapped[str] = mapped_column(String(255))
    refresh_jti: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def __repr__(self) -> str:
        return f"Grant(id={self.id!r}, client_id={self.client_id!r})"


class GrantAccessToken(Base):
    """An access token issued under a grant, kept until it expires so that
    revoking the grant can put it on the deny-list."""

    __tablename__ = "oauth_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey(Grant.id), index=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)
