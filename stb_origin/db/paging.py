"""Keyset pagination, newest first on (created_at, id): the one way every listing pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session


class UnknownCursor(ValueError):
    """``after`` names no item: starting over silently would send a client round in circles."""

    def __init__(self) -> None:
        super().__init__("after: no such item")


T = TypeVar("T")


def newest_first(session: Session, entity: type[T], query: Select[Any], limit: int,
                 after: str | None, params: Mapping[str, Any] | None = None) -> list[T]:
    """``params``: values of the query's bound parameters."""
    created_at: Any = getattr(entity, "created_at")  # noqa: B009 - any table with the pair
    id_: Any = getattr(entity, "id")  # noqa: B009
    query = query.order_by(created_at.desc(), id_.desc())
    if after is not None:
        cursor = session.get(entity, after)
        if cursor is None:
            raise UnknownCursor()
        query = query.where(
            (created_at < cursor.created_at)  # type: ignore[attr-defined]
            | ((created_at == cursor.created_at) & (id_ < cursor.id))  # type: ignore[attr-defined]
        )
    return list(session.scalars(query.limit(limit), params))
