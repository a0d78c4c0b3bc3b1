"""Resumable (tus) uploads: the table, and the lease that lets one request at a time
write an upload.

The database is the truth about an upload: its offset counts only bytes that
storage holds durably. The lease is a row update that succeeds for one taker;
every later write names the lease's token, so a request whose lease lapsed and
was taken over can no longer move the offset or finish the upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from stb_origin.db import Base, Database
from stb_origin.db.types import UtcDateTime, new_id, utcnow
from stb_origin.storage import Appending


class TusUpload(Base):
    __tablename__ = "tus_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # Upload-Metadata as the client sent it (HEAD gives it back), and what it said.
    metadata_header: Mapped[str] = mapped_column(String(4096), default="")
    filename: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(500), default="")
    packages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The asset it becomes, named at creation: the source is written in place, and
    # a second "finish" finds the asset made instead of making another.
    asset_id: Mapped[str] = mapped_column(String(32), unique=True)
    source_key: Mapped[str] = mapped_column(String(300))
    # storage.Appending beyond key and size: the S3 multipart upload and its parts.
    storage_upload_id: Mapped[str] = mapped_column(String(1024), default="")
    part_size: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    # The file's first bytes, for the container sniff once they are all in.
    head: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    writer: Mapped[str | None] = mapped_column(String(32), nullable=True)
    writer_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def appending(self) -> Appending:
        return Appending(self.source_key, self.offset, self.storage_upload_id,
                         self.part_size, self.parts)

    @property
    def complete(self) -> bool:
        return self.offset == self.length


def get(session: Session, upload_id: str) -> TusUpload | None:
    return session.get(TusUpload, upload_id)


def unfinished_count(session: Session, owner: str, now: datetime) -> int:
    return session.scalar(select(func.count()).select_from(TusUpload).where(
        TusUpload.owner == owner, TusUpload.finished_at.is_(None),
        TusUpload.expires_at > now)) or 0


def expired_ids(session: Session, now: datetime, limit: int = 100) -> list[str]:
    return list(session.scalars(select(TusUpload.id).where(TusUpload.expires_at <= now)
                                .order_by(TusUpload.expires_at).limit(limit)))


def stranded_ids(session: Session, now: datetime, limit: int = 100) -> list[str]:
    """Uploads with every byte in but no asset, and no writer: the request that
    would have finished them died."""
    return list(session.scalars(select(TusUpload.id).where(
        TusUpload.offset == TusUpload.length, TusUpload.finished_at.is_(None),
        or_(TusUpload.writer.is_(None), TusUpload.writer_until < now)).limit(limit)))


def live_storage_uploads(session: Session) -> set[str]:
    """The S3 multipart uploads unfinished uploads own: not a dead writer's leftovers."""
    return set(session.scalars(select(TusUpload.storage_upload_id).where(
        TusUpload.finished_at.is_(None), TusUpload.storage_upload_id != "")))


# -- the lease ------------------------------------------------------------------------


class Locked(Exception):
    """Another request holds the upload."""


class LeaseLost(Exception):
    """The lease lapsed and another request took the upload."""


@dataclass(frozen=True)
class Lease:
    upload_id: str
    token: str


def take(db: Database, upload_id: str, now: datetime, lease_s: float) -> Lease:
    """The upload's lease, or Locked while another request holds it. (Whether the
    upload exists, and whose it is, the caller has checked.)"""
    token = new_id()
    with db.session() as session:
        taken = session.execute(update(TusUpload).where(
            TusUpload.id == upload_id,
            or_(TusUpload.writer.is_(None), TusUpload.writer_until < now),
        ).values(writer=token, writer_until=now + timedelta(seconds=lease_s)))
    if getattr(taken, "rowcount", 0) != 1:
        raise Locked
    return Lease(upload_id, token)


def _held(lease: Lease) -> Any:
    return (TusUpload.id == lease.upload_id) & (TusUpload.writer == lease.token)


def renew(db: Database, lease: Lease, now: datetime, lease_s: float) -> None:
    with db.session() as session:
        _fenced(session, lease, writer_until=now + timedelta(seconds=lease_s))


def release(db: Database, lease: Lease) -> None:
    with db.session() as session:
        session.execute(update(TusUpload).where(_held(lease))
                        .values(writer=None, writer_until=None))


def _fenced(session: Session, lease: Lease, **values: Any) -> None:
    done = session.execute(update(TusUpload).where(_held(lease)).values(**values))
    if getattr(done, "rowcount", 0) != 1:
        raise LeaseLost


def record(db: Database, lease: Lease, appending: Appending, head: bytes,
           expires_at: datetime) -> None:
    """Bytes up to ``appending.size`` are durable in storage."""
    with db.session() as session:
        _fenced(session, lease, offset=appending.size, parts=appending.parts, head=head,
                expires_at=expires_at)


def mark_finished(session: Session, lease: Lease, now: datetime, keep_until: datetime) -> None:
    """In the transaction that makes the asset: it commits with the asset or not at all."""
    _fenced(session, lease, finished_at=now, expires_at=keep_until)


def remove(db: Database, lease: Lease) -> None:
    with db.session() as session:
        session.execute(delete(TusUpload).where(_held(lease)))
