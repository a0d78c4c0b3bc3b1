"""Storage in an S3-compatible bucket (AWS, MinIO, ...) through the ``minio`` client."""

from __future__ import annotations

import io
import os
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from stb_origin.settings import Settings, SettingsError
from stb_origin.storage.base import (
    APPENDED_TYPE,
    Appending,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
    check_key,
    check_prefix,
    replacing,
)
from stb_origin.storage.stale import Swept

PART_SIZE = 16 * 1024 * 1024
# Appends (begin_append) go up as parts of at least this much (S3's least is
# 5 MiB but for the last), more for objects that would need over MAX_PARTS.
APPEND_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
# Where an append's bytes after its last part wait between requests.
STAGING = ".stb-staging/"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
# Connections kept per host: the origin streams many objects at once, each
# holding a connection until its body is read.
POOL_SIZE = 32
# Few retries with a short back-off: a dead endpoint must fail in well under
# a second so that the origin can answer 503 rather than hang.
RETRIES = 2
RETRY_BACKOFF_S = 0.2

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_FULL_CODES = frozenset({"XMinioStorageFull"})  # MinIO's 507; AWS is never full
_UNAVAILABLE_CODES = frozenset({"NoSuchBucket", "InternalError", "ServiceUnavailable",
                                "SlowDown", "RequestTimeout"})


def make_http_client() -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        maxsize=POOL_SIZE,
        retries=urllib3.Retry(
            total=RETRIES,
            backoff_factor=RETRY_BACKOFF_S,
            status_forcelist=(500, 502, 503, 504),
            # Hand the last 5xx to minio so that it becomes an S3Error we can map.
            raise_on_status=False,
        ),
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


def _endpoint(settings: Settings) -> tuple[str, bool]:
    # Accept "host:port" (minio's form) as well as a URL with a scheme.
    endpoint, secure = settings.s3_endpoint.strip(), settings.s3_secure
    for scheme, is_secure in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint[len(scheme):], is_secure
    return endpoint.rstrip("/"), secure


class S3Storage:
    def __init__(self, client: Minio, bucket: str, prefix: str = "",
                 endpoint: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        check_prefix(prefix)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint  # for messages only

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> S3Storage:
        parts = urlsplit(url)
        if not parts.netloc or parts.query or parts.fragment:
            raise SettingsError(f"STB_STORAGE_URL: expected s3://bucket[/prefix], got {url!r}")
        endpoint, secure = _endpoint(settings)
        client = Minio(
            endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=secure,
            region=settings.s3_region,  # known region: no GetBucketLocation round trip
            http_client=make_http_client(),
        )
        storage = cls(client, parts.netloc, parts.path.strip("/"), endpoint)
        storage.ensure_bucket(settings.s3_region)
        return storage

    def __repr__(self) -> str:
        return (f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r}, "
                f"prefix={self.prefix!r})")

    def ensure_bucket(self, region: str) -> None:
        with self._errors(""):
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket, location=region)
            except S3Error as exc:  # another process made it first
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        # Messages name the endpoint, bucket and key, never credentials or URLs
        # with query strings.
        where = f"S3 {self.endpoint or 'endpoint'} bucket {self.bucket!r}"
        try:
            yield
        except S3Error as exc:
            status = exc.response.status if exc.response is not None else 0
            if exc.code in _MISSING_CODES:
                raise ObjectNotFound(key) from exc
            if status == 507 or exc.code in _FULL_CODES:
                raise StorageFull(f"{where} is full: cannot write {key!r}") from exc
            if status >= 500 or exc.code in _UNAVAILABLE_CODES:
                raise StorageUnavailable(f"{where}: {exc.code}") from exc
            raise StorageError(f"{where} refused {key!r}: {exc.code}") from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StorageUnavailable(f"{where}: bad response ({type(exc).__name__})") from exc
        except MinioException as exc:
            raise StorageError(f"{where}: {type(exc).__name__}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Covers refused connections, time-outs, retries exhausted, broken bodies.
            raise StorageUnavailable(f"{where} unreachable: {type(exc).__name__}") from exc

    # -- writing -------------------------------------------------------------

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        name = self._name(key)
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            with self._errors(key):
                # Big files go up as a multipart upload of PART_SIZE parts.
                self.client.put_object(self.bucket, name, file, size,
                                       content_type=content_type, part_size=PART_SIZE)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        name = self._name(key)
        with self._errors(key):
            self.client.put_object(self.bucket, name, io.BytesIO(data), len(data),
                                   content_type=content_type, part_size=PART_SIZE)

    # -- reading -------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        name = self._name(key)
        with self._errors(key):
            obj = self.client.stat_object(self.bucket, name)
        if obj.last_modified is None or obj.size is None:
            raise StorageUnavailable(f"S3 returned an incomplete stat for {key!r}")
        return ObjectInfo(
            key=key,
            size=obj.size,
            etag=f'"{(obj.etag or "").strip(chr(34))}"',
            last_modified=obj.last_modified.astimezone(UTC),
            content_type=obj.content_type or "application/octet-stream",
        )

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if start < 0 or chunk_size <= 0:
            raise ValueError("start must be >= 0 and chunk_size > 0")
        name = self._name(key)
        if end is not None and end < start:
            return
        length = 0 if end is None else end - start + 1  # minio: 0 means "to the end"
        try:
            with self._errors(key):
                response = self.client.get_object(self.bucket, name, offset=start, length=length)
        except StorageError as exc:
            if isinstance(exc.__cause__, S3Error) and exc.__cause__.code == "InvalidRange":
                return  # start past the end: nothing to read, as with a file
            raise
        try:
            with self._errors(key):
                yield from response.stream(chunk_size)
        finally:
            # Always give the connection back, also when the reader stops early
            # (a closed body cannot be reused, so urllib3 drops it).
            response.close()
            response.release_conn()

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def download(self, key: str, path: Path) -> None:
        with replacing(path) as tmp, open(tmp, "wb") as file:
            for chunk in self.read_chunks(key, chunk_size=1024 * 1024):
                file.write(chunk)

    # -- listing and deleting ------------------------------------------------

    def list_keys(self, prefix: str) -> Iterator[str]:
        # S3 lists in UTF-8 byte order, which is code point order: already sorted.
        full = self.prefix + check_prefix(prefix)
        cut = len(self.prefix)
        with self._errors(prefix):
            for obj in self.client.list_objects(self.bucket, prefix=full, recursive=True):
                if (obj.object_name is not None and not obj.is_dir
                        and not obj.object_name[cut:].startswith(STAGING)):
                    yield obj.object_name[cut:]

    def delete_prefix(self, prefix: str) -> int:
        if not check_prefix(prefix):
            raise InvalidKey("refusing to delete with an empty prefix")
        return self._delete([self.prefix + key for key in self.list_keys(prefix)], prefix)

    def delete_keys(self, keys: Iterable[str]) -> int:
        names = [self.prefix + check_key(key) for key in keys]
        return self._delete(names, names[0] if names else "")

    def _delete(self, names: list[str], prefix: str) -> int:
        if not names:
            return 0
        with self._errors(prefix):
            # remove_objects is lazy: iterating it sends the batches (1000 a request).
            failed = list(self.client.remove_objects(
                self.bucket, (DeleteObject(name) for name in names)))
        if failed:
            raise StorageError(f"could not delete {len(failed)} of {len(names)} objects "
                               f"under {prefix!r}: {failed[0].code}")
        return len(names)

    def sweep_temporary(self, older_than: datetime, keep: Collection[str] = ()) -> Swept:
        # put_file sends big files as multipart uploads; a writer that dies leaves
        # its parts stored (and billed) but invisible until the upload is aborted.
        # minio has no public call for these. One page (1000 uploads) a sweep is
        # enough: aborted uploads leave the list, so the next sweep sees the rest.
        swept = Swept()
        with self._errors(""):
            listing = self.client._list_multipart_uploads(self.bucket,
                                                          prefix=self.prefix or None)
            for upload in listing.uploads:
                if upload.upload_id is not None and upload.upload_id not in keep:
                    swept += self._abort_if_stale(upload.object_name, upload.upload_id,
                                                  upload.initiated_time, older_than)
        return swept

    def _abort_if_stale(self, name: str, upload_id: str, initiated: datetime | None,
                        older_than: datetime) -> Swept:
        try:
            parts = self.client._list_parts(self.bucket, name, upload_id).parts
            # The last part sent is the upload's last sign of life.
            times = [t for t in (initiated, *(p.last_modified for p in parts)) if t]
            if not times or max(times) >= older_than:
                return Swept()
            self.client._abort_multipart_upload(self.bucket, name, upload_id)
        except S3Error as exc:
            if exc.code == "NoSuchUpload":  # completed, or aborted by another sweeper
                return Swept()
            raise
        return Swept(1, sum(p.size or 0 for p in parts))

    # -- resumable writes: a multipart upload, the bytes short of a part staged --

    def _staging(self, appending: Appending) -> str:
        # One object for the bytes after each count of parts, so that staging
        # after a new part never overwrites what the recorded Appending points at.
        return f"{self.prefix}{STAGING}{check_key(appending.key)}.{appending.parts}"

    def begin_append(self, key: str, size: int) -> Appending:
        part_size = max(APPEND_PART_SIZE, -(-size // MAX_PARTS))
        with self._errors(key):
            upload_id = self.client._create_multipart_upload(
                self.bucket, self._name(key), {"Content-Type": APPENDED_TYPE})
        return Appending(key, upload_id=upload_id, part_size=part_size)

    def open_append(self, appending: Appending) -> S3Appender:
        return S3Appender(self, appending, self._staged(appending))

    def _staged(self, appending: Appending) -> bytes:
        # Only its first bytes: a request that staged more (after as many parts)
        # and died before its Appending was recorded wrote the same bytes first.
        length = appending.size - appending.parts * appending.part_size
        if length == 0:
            return b""
        with self._errors(appending.key):
            response = self.client.get_object(self.bucket, self._staging(appending),
                                              offset=0, length=length)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
        if len(data) != length:
            raise StorageUnavailable(f"the staged bytes of {appending.key!r} are short")
        return data

    def upload_part(self, appending: Appending, number: int, data: bytes) -> None:
        with self._errors(appending.key):
            self.client._upload_part(self.bucket, self._name(appending.key), data, None,
                                     appending.upload_id, number)

    def stage(self, appending: Appending, data: bytes) -> None:
        with self._errors(appending.key):
            self.client.put_object(self.bucket, self._staging(appending),
                                   io.BytesIO(data), len(data))

    def finish_append(self, appending: Appending) -> None:
        key, name = appending.key, self._name(appending.key)
        try:
            with self._errors(key):
                last = appending.parts
                if appending.size > appending.parts * appending.part_size:
                    last += 1
                    self.upload_part(appending, last, self._staged(appending))
                # Parts past the last are a discarded request's (a checksum mismatch).
                parts = [p for p in self._parts(appending) if p.part_number <= last]
                self.client._complete_multipart_upload(self.bucket, name,
                                                       appending.upload_id, parts)
        except StorageError as exc:
            # No staged bytes or no upload: completed before, if the object is there, whole.
            if not (_no_such_upload(exc) or isinstance(exc, ObjectNotFound)):
                raise
            if self.stat(key).size != appending.size:
                raise ObjectNotFound(key) from None
        self._drop_staging(appending)

    def _parts(self, appending: Appending) -> list[Part]:
        parts: list[Part] = []
        marker: str | None = None
        while True:
            listing = self.client._list_parts(self.bucket, self._name(appending.key),
                                              appending.upload_id, part_number_marker=marker)
            parts += listing.parts
            if not listing.is_truncated:
                return parts
            marker = listing.next_part_number_marker

    def abort_append(self, appending: Appending) -> None:
        try:
            with self._errors(appending.key):
                self.client._abort_multipart_upload(self.bucket, self._name(appending.key),
                                                    appending.upload_id)
        except StorageError as exc:
            if not _no_such_upload(exc):
                raise
        self._drop_staging(appending)

    def _drop_staging(self, appending: Appending) -> None:
        staged = f"{self.prefix}{STAGING}{check_key(appending.key)}."
        with self._errors(appending.key):
            names = [o.object_name for o in self.client.list_objects(self.bucket, staged)
                     if o.object_name is not None]
        self._delete(names, staged)

    def local_path(self, key: str) -> None:
        return None  # objects are only reachable over HTTP

    def check(self) -> None:
        with self._errors(""):
            exists = self.client.bucket_exists(self.bucket)
        if not exists:
            raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not exist")



def _no_such_upload(exc: StorageError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, S3Error) and cause.code == "NoSuchUpload"


class S3Appender:
    """Sends whole parts as they fill; what is short of a part is staged at close.
    Holds at most a part and a chunk in memory."""

    def __init__(self, storage: S3Storage, appending: Appending, staged: bytes) -> None:
        self.storage = storage
        self.current = appending
        self.buffer = bytearray(staged)

    def write(self, data: bytes) -> Appending | None:
        self.buffer += data
        checkpoint = None
        size = self.current.part_size
        while len(self.buffer) >= size:
            parts = self.current.parts + 1
            self.storage.upload_part(self.current, parts, bytes(self.buffer[:size]))
            del self.buffer[:size]
            self.current = checkpoint = replace(self.current, parts=parts, size=parts * size)
        return checkpoint

    def close(self, keep: bool = True) -> Appending:
        if not keep:
            # The staged bytes stay as they were: the first of them are still the
            # ones after current's parts if no part was sent since.
            return self.current
        if self.buffer:
            self.storage.stage(self.current, bytes(self.buffer))
        return replace(self.current, size=self.current.parts * self.current.part_size
                       + len(self.buffer))
