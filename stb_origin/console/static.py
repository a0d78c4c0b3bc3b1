"""The console's static files, held in memory, gzipped once, under one build id.

The build id is a hash of every file, and it is in every URL
(``/console/static/{build}/app.js``): each answer can be cached for ever, a
module's relative imports stay inside its build, and a deployment changes every
URL at once. The files are a few hundred KiB, so memory is the simplest store.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from stb_origin.web.errors import ApiError

DIRECTORY = Path(__file__).parent / "static"
PREFIX = "/console/static"
IMMUTABLE = "public, max-age=31536000, immutable"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
TEXT = "text/plain; charset=utf-8"  # licences, and anything else


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    content_type: str


@dataclass(frozen=True)
class Bundle:
    build: str
    files: dict[str, StaticFile]

    def url(self, path: str) -> str:
        return f"{PREFIX}/{self.build}/{path}"


def load(directory: Path = DIRECTORY) -> Bundle:
    digest = hashlib.sha256()
    files: dict[str, StaticFile] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        body = path.read_bytes()
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
        # mtime=0: the same bytes on every start and replica
        files[name] = StaticFile(body, gzip.compress(body, 9, mtime=0),
                                 TYPES.get(path.suffix, TEXT))
    return Bundle(digest.hexdigest()[:16], files)


def serve(bundle: Bundle, request: Request) -> Response:
    found = bundle.files.get(request.path_params["path"])
    if request.path_params["build"] != bundle.build or found is None:
        # Another build's URL (a page loaded before a deployment) is a miss too:
        # its modules and this build's must not mix.
        raise ApiError(404, "not_found", "no such file")
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.content_type, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)
