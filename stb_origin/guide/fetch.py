"""Fetching an operator's XMLTV URL: http or https only, a time-out on the whole
fetch, a size limit while it streams, and redirects only to http or https.

The standard library's urllib, because nothing else is needed: its redirect
handler alone would follow ``ftp:`` too, so ours refuses every scheme but the two.
A gzip-compressed file (``.xml.gz``, as many guide providers serve) is
decompressed with the same size limit on what comes out.
"""

from __future__ import annotations

import gzip
import http.client
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

SCHEMES = ("http", "https")
TIMEOUT_S = 30.0
MAX_REDIRECTS = 5
CHUNK = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class FetchError(Exception):
    """The URL could not be fetched; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_url(url: str) -> str:
    """The URL, if it is one we would fetch; ValueError with the reason else."""
    if len(url) > 2000:
        raise ValueError("url: at most 2000 characters")
    if not url.isprintable() or " " in url:
        raise ValueError("url: no spaces or control characters (percent-encode them)")
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError("url: only http and https URLs are fetched")
    if not parts.hostname:
        raise ValueError("url: no host")
    if parts.port == 0:  # .port raises ValueError for one out of range or not a number
        raise ValueError("url: port 0")
    if parts.username or parts.password:
        raise ValueError("url: credentials in the URL would be shown to every admin; not"
                         " supported")
    return url


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def http_error_302(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any) -> Any:
        # Checked before urllib's own check, which lets ftp: through and calls the
        # rest an HTTP error.
        location = headers.get("location") or headers.get("uri") or ""
        if urlsplit(urljoin(req.full_url, location)).scheme.lower() not in SCHEMES:
            fp.close()
            raise FetchError("bad_redirect", "the URL redirects to a scheme other than http"
                             " or https; not followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def fetch_to(url: str, dest: Path, max_bytes: int, timeout_s: float = TIMEOUT_S) -> int:
    """Stream ``url`` into ``dest`` (decompressed if gzip); its size in bytes."""
    check_url(url)
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"User-Agent": "stb-origin guide",
                                                   "Accept-Encoding": "identity"})
    # Named like dest (an upload part file): the sweeper takes it if the process dies.
    raw = dest.with_name(f"{dest.stem}-raw{dest.suffix}")
    try:
        try:
            with opener.open(request, timeout=timeout_s) as response, open(raw, "wb") as out:
                _copy(response, out, max_bytes, deadline)
        except FetchError:
            raise
        except urllib.error.HTTPError as exc:
            exc.close()
            raise FetchError("http_error", f"the server answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError("unreachable", f"could not fetch: {reason}") from None
        except (http.client.HTTPException, ValueError) as exc:
            # A malformed answer (a bad status line, a body cut short) or URL (a port
            # that is not one): the server's fault or the operator's, never ours.
            raise FetchError("bad_response", f"could not fetch: {type(exc).__name__}"
                             f" {str(exc)[:200]}") from None
        with open(raw, "rb") as head:
            compressed = head.read(2) == GZIP_MAGIC
        if not compressed:
            raw.replace(dest)
            return dest.stat().st_size
        try:
            with gzip.open(raw, "rb") as unpacked, open(dest, "wb") as out:
                return _copy(unpacked, out, max_bytes, deadline)
        except (OSError, EOFError, zlib.error):
            raise FetchError("bad_gzip", "the file looks gzip-compressed but does not"
                             " decompress") from None
    finally:
        raw.unlink(missing_ok=True)


def _copy(source: Any, out: BinaryIO, max_bytes: int, deadline: float) -> int:
    # read1: what has arrived, so that a server trickling bytes meets the deadline.
    read = getattr(source, "read1", source.read)
    size = 0
    while chunk := read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("too_large", f"the guide is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchError("timeout", "the fetch took too long")
        out.write(chunk)
    return size

