"""The tus 1.0 protocol's headers (https://tus.io/protocols/resumable-upload): what
this server offers, and strict parsing of what clients send."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from stb_origin.ingest.upload import MAX_PACKAGE_NAME_BYTES, MAX_PACKAGES, MAX_TITLE_BYTES
from stb_origin.web.errors import ApiError

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
CHECKSUMS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
MAX_METADATA_CHARS = 4096
MAX_FILENAME_BYTES = 255
# The metadata keys taken; others (tus-js-client's filetype, Uppy's relativePath...)
# are kept for HEAD and otherwise ignored.
KEYS = ("filename", "title", "packages")
_DIGITS = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[!-+\--~]+")  # printable ASCII but space and comma
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_version(headers: Mapping[str, str]) -> None:
    """Every request but OPTIONS names the protocol version (412 otherwise)."""
    sent = headers.get("tus-resumable")
    if sent != VERSION:
        raise ApiError(412, "unsupported_tus_version",
                       f"send Tus-Resumable: {VERSION} (this server speaks tus {VERSION} only)",
                       {"Tus-Version": VERSION})


def parse_size(name: str, value: str | None) -> int:
    """Upload-Length or Upload-Offset: a non-negative decimal integer."""
    if value is None:
        raise ApiError(400, "bad_request", f"the {name} header is required")
    if not _DIGITS.fullmatch(value.strip()):
        raise ApiError(400, "bad_request", f"{name} must be a non-negative integer")
    return int(value)


@dataclass(frozen=True)
class Metadata:
    filename: str = ""
    title: str = ""
    packages: tuple[str, ...] = ()


def parse_metadata(header: str | None) -> Metadata:
    """Upload-Metadata: comma-separated "key base64value" pairs, decoded strictly."""
    if not header or not header.strip():
        return Metadata()
    if len(header) > MAX_METADATA_CHARS:
        raise _bad_metadata(f"is longer than {MAX_METADATA_CHARS} characters")
    values: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not _KEY.fullmatch(key):
            raise _bad_metadata("has a pair without a key (keys are ASCII without spaces"
                                " or commas)")
        if key in values:
            raise _bad_metadata(f"names {key!r} twice")
        values[key] = _decode(key, encoded.strip())
    return Metadata(filename=_filename(values.get("filename", "")),
                    title=_title(values.get("title", "")),
                    packages=_packages(values.get("packages", "")))


def _decode(key: str, encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _bad_metadata(f"has a value for {key!r} that is not base64 of UTF-8"
                            " text") from None
    if key in KEYS and _CONTROL.search(text):
        raise _bad_metadata(f"has control characters in {key!r}")
    return text


def _filename(name: str) -> str:
    # Only the last part of a path, whichever separator the client's system used.
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    if base in (".", ".."):
        base = ""
    if len(base.encode()) > MAX_FILENAME_BYTES:
        raise _bad_metadata(f"has a filename longer than {MAX_FILENAME_BYTES} bytes")
    return base


def _title(title: str) -> str:
    if len(title.encode()) > MAX_TITLE_BYTES:
        raise _bad_metadata(f"has a title longer than {MAX_TITLE_BYTES} bytes")
    return title.strip()


def _packages(listed: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in listed.split(",") if name.strip()))
    if len(names) > MAX_PACKAGES:
        raise _bad_metadata(f"lists more than {MAX_PACKAGES} packages")
    if any(len(name.encode()) > MAX_PACKAGE_NAME_BYTES for name in names):
        raise _bad_metadata(f"has a package name longer than {MAX_PACKAGE_NAME_BYTES} bytes")
    return names


def _bad_metadata(what: str) -> ApiError:
    return ApiError(400, "bad_metadata", f"Upload-Metadata {what}")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def new(self) -> Any:
        return CHECKSUMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """Upload-Checksum: "<algorithm> <base64 digest>" of the request's body."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise ApiError(400, "unsupported_checksum",
                       f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUMS)}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise ApiError(400, "bad_request",
                       f"Upload-Checksum: not a base64 {algorithm} digest")
    return Checksum(algorithm, digest)


def http_date(when: datetime) -> str:
    """Upload-Expires is an RFC 9110 HTTP-date."""
    return format_datetime(when, usegmt=True)
