"""Resumable uploads, apart from HTTP: create one, write a request's bytes into it
under its lease, turn it into exactly one asset, terminate it, expire it.

Storage holds the bytes (storage.Appending: an appended file in a folder, a
multipart upload on S3); the database (ingest.tus_records) says how many of them
count. A kill at any point leaves the two agreeing on a prefix of the file, and a
finished upload's asset is made in the same transaction that marks it finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stb_origin.accounts import packages as package_records
from stb_origin.db.types import new_id, utcnow
from stb_origin.ingest import tus_records as records
from stb_origin.ingest.service import UnknownPackages, accept_stored_source
from stb_origin.ingest.sniff import SNIFF_BYTES, container_of
from stb_origin.ingest.tus import Checksum, Metadata
from stb_origin.ingest.tus_records import Lease, LeaseLost, TusUpload
from stb_origin.ingest.upload import safe_suffix
from stb_origin.services import Services
from stb_origin.storage import Appender, Appending, Swept, layout

log = logging.getLogger("stb_origin.ingest")

# A writer renews its lease every RENEW_EVERY_S; one that could not for
# LEASE_S - RENEW_EVERY_S stops writing before anyone else may take over.
LEASE_S = 30.0
RENEW_EVERY_S = 10.0


class TooManyUploads(Exception):
    pass


class NotAMediaContainer(Exception):
    pass


def create(services: Services, owner: str, length: int, metadata: Metadata,
           metadata_header: str) -> TusUpload:
    """A new upload of ``length`` bytes; TooManyUploads past the owner's limit,
    UnknownPackages when the metadata names a package that does not exist."""
    settings = services.settings
    now = utcnow()
    with services.db.session() as session:
        if records.unfinished_count(session, owner, now) >= settings.uploads_per_user:
            raise TooManyUploads
        from stb_origin.accounts import packages as package_records
        unknown = package_records.unknown_names(session, metadata.packages)
    if unknown:
        raise UnknownPackages(unknown)
    asset_id = new_id()
    appending = services.storage.begin_append(
        layout.source_key(asset_id, safe_suffix(metadata.filename)), length)
    upload = TusUpload(
        id=new_id(), owner=owner, length=length, offset=0, metadata_header=metadata_header,
        filename=metadata.filename, packages=list(metadata.packages),
        title=metadata.title or Path(metadata.filename).stem, asset_id=asset_id,
        source_key=appending.key, storage_upload_id=appending.upload_id,
        part_size=appending.part_size, parts=0, head=b"",
        expires_at=now + timedelta(seconds=settings.upload_expires_s))
    try:
        with services.db.session() as session:
            session.add(upload)
    except Exception:
        services.storage.abort_append(appending)
        raise
    return upload


@dataclass
class Writing:
    """One request's bytes into an upload, under its lease (call from one thread).

    With a checksum nothing counts until the whole body is checked: checkpoints
    are not recorded, and a mismatch forgets every byte of the request."""

    services: Services
    upload: TusUpload
    lease: Lease
    checksum: Checksum | None = None
    appender: Appender = field(init=False)
    head: bytes = field(init=False)
    digest: Any = field(init=False)
    valid_until: float = field(init=False)

    def __post_init__(self) -> None:
        self.head = self.upload.head
        self.digest = self.checksum.new() if self.checksum else None
        self.lease_renewed()
        self.appender = self.services.storage.open_append(self.upload.appending)

    def lease_renewed(self) -> None:
        self.valid_until = time.monotonic() + LEASE_S - RENEW_EVERY_S

    def write(self, data: bytes) -> None:
        if time.monotonic() > self.valid_until:
            raise LeaseLost
        self._sniff(data)
        if self.digest is not None:
            self.digest.update(data)
        checkpoint = self.appender.write(data)
        if checkpoint is not None and self.digest is None:
            self._record(checkpoint)

    def _sniff(self, data: bytes) -> None:
        wanted = min(SNIFF_BYTES, self.upload.length)
        if len(self.head) >= wanted:
            return
        self.head += data[: wanted - len(self.head)]
        # Refused as soon as its first bytes show it: not after gigabytes.
        if len(self.head) == wanted and container_of(self.head) is None:
            raise NotAMediaContainer

    @property
    def checksum_failed(self) -> bool:
        return self.checksum is not None and self.digest.digest() != self.checksum.digest

    def close(self, keep: bool = True) -> Appending:
        """Keep what was written, unless told not to or it fails its checksum (a
        body cut short fails it too); where the upload stands now."""
        keep = keep and not self.checksum_failed
        appending = self.appender.close(keep)
        if keep:
            self._record(appending)
        return appending

    def _record(self, appending: Appending) -> None:
        expires_at = utcnow() + timedelta(seconds=self.services.settings.upload_expires_s)
        head = self.head[: appending.size]
        records.record(self.services.db, self.lease, appending, head, expires_at)
        self.upload.offset, self.upload.parts = appending.size, appending.parts
        self.upload.head, self.upload.expires_at = head, expires_at


def finish(services: Services, upload: TusUpload, lease: Lease) -> str:
    """Every byte is in: put the source together and make its one asset (the
    asset and the upload's "finished" commit together); the asset's id.
    Done again after a crash at any step, each step finds its work done."""
    with services.db.session() as session:
        unknown = package_records.unknown_names(session, upload.packages)
    if unknown:
        terminate(services, upload, lease)
        raise UnknownPackages(unknown)
    services.storage.finish_append(upload.appending)
    now = utcnow()
    keep_until = now + timedelta(seconds=services.settings.upload_expires_s)
    try:
        accept_stored_source(
            services, upload.asset_id, upload.source_key, upload.title, upload.length,
            upload.packages, also=lambda session: records.mark_finished(
                session, lease, now, keep_until))
    except UnknownPackages:  # deleted in the moment since the check above
        services.storage.delete_keys([upload.source_key])
        records.remove(services.db, lease)
        raise
    upload.finished_at, upload.expires_at = now, keep_until
    log.info("asset uploaded", extra={"asset_id": upload.asset_id, "bytes": upload.length,
                                      "upload_id": upload.id, "subject": upload.owner})
    return upload.asset_id


def terminate(services: Services, upload: TusUpload, lease: Lease) -> None:
    """Delete an upload and the bytes it holds (a finished one's belong to its asset)."""
    if upload.finished_at is None:
        services.storage.abort_append(upload.appending)
    records.remove(services.db, lease)


def expire(services: Services, now: datetime) -> Swept:
    """Delete the uploads past their expiry with their bytes, and finish those whose
    finishing request died; for the sweeper."""
    swept = Swept()
    with services.db.session() as session:
        expired = records.expired_ids(session, now)
        stranded = records.stranded_ids(session, now)
    for upload_id in expired:
        swept += _one(_expire_one, services, upload_id, now)
    for upload_id in stranded:
        _one(_finish_stranded, services, upload_id, now)
    return swept


def _one(step: Callable[[Services, TusUpload, Lease], Swept | None], services: Services,
         upload_id: str, now: datetime) -> Swept:
    try:
        with _leased(services, upload_id, now) as held:
            return (step(services, *held) if held is not None else None) or Swept()
    except Exception:  # the next sweep tries again; the others go on
        log.exception("sweeping an upload failed", extra={"upload_id": upload_id})
        return Swept()


def _expire_one(services: Services, upload: TusUpload, lease: Lease) -> Swept:
    terminate(services, upload, lease)
    if upload.finished_at is not None:
        return Swept()
    log.info("expired upload deleted", extra={"upload_id": upload.id, "bytes": upload.offset})
    return Swept(1, upload.offset)


def _finish_stranded(services: Services, upload: TusUpload, lease: Lease) -> None:
    if upload.finished_at is None and upload.complete:
        log.warning("finishing an upload whose request died", extra={"upload_id": upload.id})
        finish(services, upload, lease)


@contextmanager
def _leased(services: Services, upload_id: str, now: datetime,
            ) -> Iterator[tuple[TusUpload, Lease] | None]:
    try:
        lease = records.take(services.db, upload_id, now, LEASE_S)
    except records.Locked:
        yield None  # a request is on it
        return
    try:
        with services.db.session() as session:
            upload = records.get(session, upload_id)
        yield (upload, lease) if upload is not None else None
    finally:
        records.release(services.db, lease)


def live_storage_uploads(services: Services) -> set[str]:
    with services.db.session() as session:
        return records.live_storage_uploads(session)
