"""Artwork over HTTP: the content team's uploads, and /art/... for boxes and the CDN.

``PUT /v1/catalog/titles/{id}/artwork/{kind}`` takes the image itself as the
body (image/jpeg or image/png), makes its sizes and answers with the title.
``GET /art/{title}/{name}`` serves a size from storage: public, immutable
(the name changes with the image), with ETag/304 and single byte ranges by the
origin's rules (``origin.conditional``).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import anyio
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, run_as_caller
from stb_origin.catalog import announce, artwork, images
from stb_origin.catalog.images import BadImage, Format
from stb_origin.catalog.models import ArtworkKind
from stb_origin.catalog.routes import TITLES
from stb_origin.catalog.titles import get_title
from stb_origin.catalog.view import editor_json
from stb_origin.db.types import ID
from stb_origin.origin.caching import IMMUTABLE_CACHE_CONTROL, NOT_FOUND_CACHE_CONTROL
from stb_origin.origin.conditional import (
    RangeNotSatisfiable,
    evaluate_preconditions,
    http_date,
    if_range_allows,
    parse_range,
)
from stb_origin.storage import ObjectInfo, ObjectNotFound, StorageError, layout
from stb_origin.web.cors import CORS_HEADERS
from stb_origin.web.errors import ApiError, error_response
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of

log = logging.getLogger("stb_origin.catalog")

ART_PATH = "/art/{title_id:str}/{name:path}"


def _kind(request: Request) -> str:
    value: str = request.path_params["kind"]
    if value not in set(ArtworkKind):
        raise ApiError(404, "not_found", f"no such artwork kind; one of {', '.join(ArtworkKind)}")
    return value


def _declared(request: Request) -> Format:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    fmt = images.FORMATS.get(media_type)
    if fmt is None:
        raise ApiError(415, "unsupported_media_type",
                       "send the image itself as the body, as image/jpeg or image/png")
    return fmt


async def _read_image(request: Request, path: Path) -> None:
    """The body into ``path``, refused past images.MAX_BYTES."""
    too_large = ApiError(413, "payload_too_large", f"artwork is at most {images.MAX_BYTES} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > images.MAX_BYTES:
        raise too_large
    size = 0
    try:
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > images.MAX_BYTES:
                    raise too_large
                out.write(chunk)
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "the body ended early") from None
    if size == 0:
        raise ApiError(400, "bad_request", "the body is empty: send the image")


def _sniffed(path: Path, declared: Format) -> Format:
    with path.open("rb") as file:
        head = file.read(16)
    try:
        fmt = images.sniff(head)
    except BadImage as exc:
        raise ApiError(415, "unsupported_media_type", str(exc)) from None
    if fmt is not declared:
        raise ApiError(415, "unsupported_media_type",
                       f"the body is a {fmt.name.upper()} image, sent as {declared.media_type}")
    return fmt


async def put_artwork(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    kind = _kind(request)
    declared = _declared(request)
    # Before the body: a missing title costs no upload and no ffmpeg.
    await run_as_caller(request, claims, lambda session, _caller: get_title(session, title_id))
    services = services_of(request)
    work_dir = services.settings.work_dir / "artwork"
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="upload-") as folder:
        upload = Path(folder) / "upload"
        await _read_image(request, upload)
        fmt = _sniffed(upload, declared)
        try:
            digest, sizes = await anyio.to_thread.run_sync(
                artwork.make_sizes, services.storage, title_id, kind, fmt, upload, work_dir)
        except BadImage as exc:
            raise ApiError(422, "invalid_image", str(exc)) from None
    base_url = services.settings.public_base_url

    def work(session: Session, _caller: Caller) -> Json:
        artwork.record(session, title_id, kind, fmt, digest, sizes)
        return editor_json(session, [get_title(session, title_id)], base_url)[0]

    title = await run_as_caller(request, claims, work)
    await announce.title_changed(request, title_id, "updated")
    log.info("artwork stored", extra={"title_id": title_id, "kind": kind, "digest": digest,
                                      "subject": claims.subject})
    return json_response(title)


async def delete_artwork(request: Request) -> Response:
    claims = await claims_with(request, scopes.ASSETS_WRITE)
    title_id = path_id(request, "title_id", "title")
    kind = _kind(request)

    def work(session: Session, _caller: Caller) -> bool:
        get_title(session, title_id)
        return artwork.remove(session, title_id, kind)

    if not await run_as_caller(request, claims, work):
        raise ApiError(404, "not_found", "the title has no artwork of this kind")
    await announce.title_changed(request, title_id, "updated")
    return Response(status_code=204, headers=NO_STORE)


# --- serving ------------------------------------------------------------------------

def _not_found() -> Response:
    return error_response(404, "not_found", "no such file",
                          {**CORS_HEADERS, "Cache-Control": NOT_FOUND_CACHE_CONTROL})


def _unavailable() -> Response:
    return error_response(503, "storage_unavailable", "storage is unavailable; try again",
                          {**CORS_HEADERS, "Cache-Control": "no-store", "Retry-After": "5"})


async def serve_art(request: Request) -> Response:
    title_id, name = request.path_params["title_id"], request.path_params["name"]
    media_type = artwork.parse_name(name)
    if media_type is None or not ID.fullmatch(title_id) or b"%" in request.scope.get(
            "raw_path", b""):
        return _not_found()
    storage = services_of(request).storage
    key = layout.art_key(title_id, name)

    def load() -> tuple[ObjectInfo, bytes]:
        return storage.stat(key), storage.get_bytes(key)

    try:
        info, body = await anyio.to_thread.run_sync(load)
    except ObjectNotFound:
        return _not_found()
    except StorageError:
        log.warning("storage unavailable", extra={"key": key})
        return _unavailable()
    etag, modified = info.etag, info.last_modified
    headers = {**CORS_HEADERS, "Accept-Ranges": "bytes", "Cache-Control": IMMUTABLE_CACHE_CONTROL,
               "ETag": etag, "Last-Modified": http_date(modified),
               "X-Content-Type-Options": "nosniff"}
    verdict = evaluate_preconditions(
        request.method, etag, modified, if_none_match=request.headers.get("if-none-match"),
        if_modified_since=request.headers.get("if-modified-since"))
    if verdict == 304:
        return Response(status_code=304, headers=headers)
    status, start, length = 200, 0, len(body)
    if request.method == "GET" and if_range_allows(request.headers.get("if-range"), etag,
                                                   modified):
        try:
            byte_range = parse_range(request.headers.get("range"), len(body))
        except RangeNotSatisfiable as exc:
            return error_response(416, "range_not_satisfiable", "range not satisfiable",
                                  {**CORS_HEADERS, "Cache-Control": "no-store",
                                   "Content-Range": exc.content_range})
        if byte_range is not None:
            status, start, length = 206, byte_range.start, byte_range.length
            headers["Content-Range"] = byte_range.content_range(len(body))
    if request.method == "HEAD":
        return Response(status_code=200, media_type=media_type,
                        headers={**headers, "Content-Length": str(len(body))})
    return Response(body[start:start + length], status_code=status, media_type=media_type,
                    headers=headers)


ROUTES = [
    Route(TITLES + "/{title_id:str}/artwork/{kind:str}", put_artwork, methods=["PUT"]),
    Route(TITLES + "/{title_id:str}/artwork/{kind:str}", delete_artwork, methods=["DELETE"]),
    Route(ART_PATH, serve_art, methods=["GET", "HEAD"]),
]
