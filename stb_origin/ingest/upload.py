"""Streaming uploads (a multipart form, or the file as the whole body): the body goes
to a file chunk by chunk, never whole into memory, with the size limit enforced
while it streams."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect, Request

from stb_origin.assets.causes import DISK_FULL, STORAGE_UNAVAILABLE, failure_cause
from stb_origin.ingest.sniff import SNIFF_BYTES
from stb_origin.storage.base import StorageError
from stb_origin.web.errors import ApiError, missing_field_message, unknown_fields_message

MAX_TITLE_BYTES = 500
MAX_PACKAGES = 20
MAX_PACKAGE_NAME_BYTES = 64
# The form's fields; "packages" may be repeated, one package name each.
FIELDS = ("file", "title", "packages")
WRITE_BATCH_BYTES = 1024 * 1024
# The file a body streams into; ingest.leftovers sweeps those a dead process left.
PART_PREFIX, PART_SUFFIX = "upload-", ".part"
PART_GLOB = f"{PART_PREFIX}*{PART_SUFFIX}"
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


@dataclass
class Upload:
    path: Path
    size: int
    filename: str
    title: str
    head: bytes = b""
    packages: tuple[str, ...] = ()
    sha256: str = ""  # of the file's bytes, for Idempotency-Key fingerprints

    @property
    def suffix(self) -> str:
        return safe_suffix(self.filename)


def safe_suffix(filename: str) -> str:
    """The file name's extension, if it is a short plain one (it names the stored source)."""
    suffix = Path(filename).suffix.lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ""


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)


class _Receiver:
    """Collects parser callbacks; file bytes are batched for the writer thread."""

    def __init__(self, dest: Path, max_bytes: int) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.part = _Part()
        self._field = b""
        self._value = b""
        self.file: BinaryIO | None = None
        self.upload: Upload | None = None
        self.pending = bytearray()
        self.title = ""
        self.packages: list[str] = []
        self.error: ApiError | None = None
        self.complete = False
        self.digest = hashlib.sha256()

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get("content-disposition", ""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self.part.name not in FIELDS:
            # Refused before its bytes are read: a misspelt "package" must not
            # leave the upload quietly out of every package.
            self.error = ApiError(400, "bad_request",
                                  unknown_fields_message([self.part.name], FIELDS))
            return
        if self.part.name == "packages" and len(self.packages) >= MAX_PACKAGES:
            self.error = ApiError(400, "bad_request", f"at most {MAX_PACKAGES} packages")
            return
        if self.part.name == "file":
            if self.upload is not None:
                self.error = ApiError(400, "bad_request", "only one file per upload")
                return
            self.upload = Upload(path=self.dest, size=0,
                                 filename=os.path.basename(self.part.filename or ""), title="")
            self.file = open(self.dest, "wb")  # noqa: SIM115 (closed by receive_upload)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name == "file" and self.upload is not None:
            chunk = data[start:end]
            self.upload.size += len(chunk)
            if self.upload.size > self.max_bytes:
                self.error = ApiError(413, "payload_too_large",
                                      f"the file is larger than {self.max_bytes} bytes")
                return
            if len(self.upload.head) < SNIFF_BYTES:
                self.upload.head += chunk[: SNIFF_BYTES - len(self.upload.head)]
            self.pending += chunk
        elif self.part.name in ("title", "packages"):
            self.part.text += data[start:end]
            limit = MAX_TITLE_BYTES if self.part.name == "title" else MAX_PACKAGE_NAME_BYTES
            if len(self.part.text) > limit:
                self.error = ApiError(400, "bad_request",
                                      f"{self.part.name} is longer than {limit} bytes")

    def on_part_end(self) -> None:
        if self.part.name == "title":
            self.title = self.part.text.decode("utf-8", "replace").strip()
        elif self.part.name == "packages":
            name = self.part.text.decode("utf-8", "replace").strip()
            if name and name not in self.packages:
                self.packages.append(name)

    def on_end(self) -> None:
        self.complete = True

    def take_pending(self) -> bytes:
        data = bytes(self.pending)
        self.pending.clear()
        return data

    def write(self, data: bytes) -> None:
        """In a worker thread: hashing gigabytes would stall the event loop."""
        assert self.file is not None
        self.digest.update(data)
        self.file.write(data)


async def receive_upload(request: Request, upload_dir: Path, max_bytes: int) -> Upload:
    """Stream a multipart body into upload_dir; the caller owns the returned file."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise ApiError(415, "unsupported_media_type",
                       "send the master as multipart/form-data with a \"file\" field")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise ApiError(413, "payload_too_large", f"the file is larger than {max_bytes} bytes")

    upload_dir.mkdir(parents=True, exist_ok=True)
    dest = upload_dir / f"{PART_PREFIX}{secrets.token_hex(8)}{PART_SUFFIX}"
    receiver = _Receiver(dest, max_bytes)
    parser = MultipartParser(options[b"boundary"], callbacks={
        "on_part_begin": receiver.on_part_begin,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
        "on_end": receiver.on_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if receiver.error is not None:
                raise receiver.error
            if receiver.file is not None and len(receiver.pending) >= WRITE_BATCH_BYTES:
                await anyio.to_thread.run_sync(receiver.write, receiver.take_pending())
        parser.finalize()
        if receiver.error is not None:
            raise receiver.error
        if not receiver.complete:
            raise ApiError(400, "bad_request", "the multipart body ends before its closing"
                           " boundary: the upload is incomplete")
        if receiver.file is not None:
            await anyio.to_thread.run_sync(receiver.write, receiver.take_pending())
            receiver.file.close()
    except BaseException as exc:
        _discard(receiver)
        if isinstance(exc, ClientDisconnect):
            raise ApiError(400, "bad_request", "the upload was interrupted") from None
        if isinstance(exc, MultipartParseError):
            raise ApiError(400, "bad_request", "malformed multipart body") from None
        if (refusal := storing_error(exc)) is not None:
            raise refusal from None
        raise

    upload = receiver.upload
    if upload is None:
        raise ApiError(400, "missing_file", missing_field_message("file", FIELDS))
    upload.title = receiver.title or Path(upload.filename).stem
    upload.packages = tuple(receiver.packages)
    upload.sha256 = receiver.digest.hexdigest()
    if upload.size == 0:
        dest.unlink(missing_ok=True)
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    return upload


def storing_error(exc: BaseException) -> ApiError | None:
    """The answer to an upload the server could not keep: 507 when the disk is
    full, 503 when storage is unreachable; None for any other error."""
    code, _message = failure_cause(exc)
    if code == DISK_FULL:
        return ApiError(507, "insufficient_storage", "the server is out of storage space;"
                        " the upload was not stored, try again later")
    if code == STORAGE_UNAVAILABLE:
        return ApiError(503, "storage_unavailable", "storage is unavailable; the upload"
                        " was not stored, try again", {"Retry-After": "10"})
    return None


@contextmanager
def kept_or_refused(upload: Upload) -> Iterator[None]:
    """Around keeping a received upload: a full disk answers 507, storage or the
    queue out of reach 503; the upload's file is gone afterwards either way."""
    try:
        yield
    except (StorageError, RedisError) as exc:
        raise storing_error(exc) or unavailable() from None
    except Exception as exc:
        # A database on a full disk: the same 507 as storage on one.
        if (refusal := storing_error(exc)) is None:
            raise
        raise refusal from None
    finally:
        upload.path.unlink(missing_ok=True)


def unavailable() -> ApiError:
    """The answer when storage or the job queue cannot be reached."""
    return ApiError(503, "unavailable", "storage or the job queue is unavailable; try again",
                    {"Retry-After": "10"})


def _discard(receiver: _Receiver) -> None:
    if receiver.file is not None:
        # On a full disk, closing fails to flush the last bytes; the file goes anyway.
        with suppress(OSError):
            receiver.file.close()
    receiver.dest.unlink(missing_ok=True)


async def receive_body(request: Request, upload_dir: Path, max_bytes: int) -> Upload:
    """Stream a plain (not multipart) body, the file itself, into upload_dir, with
    the size limit held while it streams; the caller owns the returned file."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "payload_too_large", f"the file is larger than {max_bytes} bytes")
    upload_dir.mkdir(parents=True, exist_ok=True)
    dest = upload_dir / f"{PART_PREFIX}{secrets.token_hex(8)}{PART_SUFFIX}"
    upload = Upload(path=dest, size=0, filename="", title="")
    digest = hashlib.sha256()
    pending = bytearray()

    def write(file: BinaryIO, data: bytes) -> None:
        digest.update(data)
        file.write(data)

    try:
        with open(dest, "wb") as file:
            async for chunk in request.stream():
                upload.size += len(chunk)
                if upload.size > max_bytes:
                    raise ApiError(413, "payload_too_large",
                                   f"the file is larger than {max_bytes} bytes")
                if len(upload.head) < SNIFF_BYTES:
                    upload.head += chunk[: SNIFF_BYTES - len(upload.head)]
                pending += chunk
                if len(pending) >= WRITE_BATCH_BYTES:
                    await anyio.to_thread.run_sync(write, file, bytes(pending))
                    pending.clear()
            await anyio.to_thread.run_sync(write, file, bytes(pending))
    except BaseException as exc:
        dest.unlink(missing_ok=True)
        if isinstance(exc, ClientDisconnect):
            raise ApiError(400, "bad_request", "the upload was interrupted") from None
        if (refusal := storing_error(exc)) is not None:
            raise refusal from None
        raise
    upload.sha256 = digest.hexdigest()
    if upload.size == 0:
        dest.unlink(missing_ok=True)
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    return upload
