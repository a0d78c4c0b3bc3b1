"""Keyset pagination, newest first on (created_at, id), as /v1/assets does it."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import InvalidValue
from stb_origin.accounts.models import Device, Entitlement, User

T = TypeVar("T", User, Device, Entitlement)


def newest_first(session: Session, entity: type[T], query: Select[T], limit: int,
                 after: str | None) -> list[T]:
    query = query.order_by(entity.created_at.desc(), entity.id.desc())
    if after is not None:
        cursor = session.get(entity, after)
        if cursor is None:
            # Starting over silently would send a client round in circles.
            raise InvalidValue("after: no such item")
        query = query.where(
            (entity.created_at < cursor.created_at)
            | ((entity.created_at == cursor.created_at) & (entity.id < cursor.id))
        )
    return list(session.scalars(query.limit(limit)))
