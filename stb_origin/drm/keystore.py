"""Content keys at rest: one row per (asset, key id), the key wrapped by the envelope."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, utcnow
from stb_origin.drm.keys import ContentKey, unwrap, wrap
from stb_origin.envelope import Envelope


class ContentKeyRecord(Base):
    __tablename__ = "content_keys"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    # The published version whose playlists name the key (None: stored before
    # versions were recorded); older versions' keys go when the version does.
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"ContentKeyRecord(asset_id={self.asset_id!r}, key_id={self.key_id!r})"


def store(session: Session, asset_id: str, keys: Sequence[ContentKey],
          envelope: Envelope, version: str | None = None) -> None:
    for ck in keys:
        session.add(ContentKeyRecord(asset_id=asset_id, key_id=ck.key_id, version=version,
                                     wrapped=wrap(envelope, asset_id, ck)))
    session.flush()


def move_to_version(session: Session, asset_id: str, key_ids: Collection[str],
                    version: str) -> None:
    """Mark keys an asset already has as named by ``version`` too (a clip's keys are
    the channel's: every run of it stores the same key ids)."""
    session.execute(update(ContentKeyRecord)
                    .where(ContentKeyRecord.asset_id == asset_id,
                           ContentKeyRecord.key_id.in_(list(key_ids)))
                    .values(version=version))


def load(session: Session, asset_id: str, key_id: str, envelope: Envelope) -> bytes | None:
    """The clear 16-byte key, or None when the asset has no such key."""
    record = session.get(ContentKeyRecord, (asset_id, key_id))
    if record is None:
        return None
    return unwrap(envelope, asset_id, key_id, record.wrapped)


def read_wrapped(conn: Connection, asset_id: str, key_id: str) -> bytes | None:
    """The wrapped key without the ORM (the key path caches it and unwraps per use)."""
    table = ContentKeyRecord.__table__.c
    wrapped = conn.scalar(select(table.wrapped).where(table.asset_id == asset_id,
                                                      table.key_id == key_id))
    return bytes(wrapped) if wrapped is not None else None


def key_ids(session: Session, asset_id: str) -> list[str]:
    query = select(ContentKeyRecord.key_id).where(ContentKeyRecord.asset_id == asset_id)
    return list(session.scalars(query.order_by(ContentKeyRecord.created_at,
                                               ContentKeyRecord.key_id)))


def delete_for_asset(session: Session, asset_id: str) -> int:
    result = session.execute(
        delete(ContentKeyRecord).where(ContentKeyRecord.asset_id == asset_id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_other_versions(session: Session, asset_id: str, keep_version: str) -> int:
    """Drop an asset's keys but those of keep_version: the versions no longer published."""
    result = session.execute(delete(ContentKeyRecord).where(
        ContentKeyRecord.asset_id == asset_id,
        ContentKeyRecord.version.is_(None) | (ContentKeyRecord.version != keep_version)))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["ContentKeyRecord", "delete_other_versions", "delete_for_asset", "key_ids", "load",
           "move_to_version", "read_wrapped", "store"]
