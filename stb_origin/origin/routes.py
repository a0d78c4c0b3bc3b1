"""GET/HEAD/OPTIONS /hls/{asset_id}/{path}: HLS from storage with CDN-friendly semantics.

ETag/Last-Modified with 304s, single byte ranges with 206/416 (several ranges
get the full 200), If-Range, CORS for web players, and Cache-Control from
``caching``. Small objects come from the in-memory copy ``objects`` keeps, with
exactly the same answers. Filtered masters (``masters``) are made from the
master on the fly. ``access`` decides who may ask: the CDN, signed URLs
(``/hls/st=.../{asset_id}/{path}``). Errors are JSON; nothing reveals a
storage path.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stb_origin.origin.access import HlsAccess
from stb_origin.origin.caching import (
    NO_STORE,
    NOT_FOUND_CACHE_CONTROL,
    PLAYLIST_MAX_AGE_S,
    cache_control,
    is_immutable,
)
from stb_origin.origin.conditional import (
    RangeNotSatisfiable,
    evaluate_preconditions,
    http_date,
    if_range_allows,
    parse_range,
)
from stb_origin.origin.generated import GeneratedPlaylists
from stb_origin.origin.masters import filtered, form_etag, parse_name
from stb_origin.origin.objectcache import MUTABLE_TTL_S, ObjectCache
from stb_origin.origin.objects import Found, Objects
from stb_origin.origin.paths import HlsPath, parse_hls_path
from stb_origin.origin.responses import ObjectResponse, PathSendResponse, close_chunks
from stb_origin.origin.takedowns import Takedowns
from stb_origin.settings import SettingsError
from stb_origin.storage import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    layout,
)
from stb_origin.web.cors import CORS_HEADERS, PREFLIGHT_HEADERS
from stb_origin.web.errors import EXCEPTION_HANDLERS, error_response

log = logging.getLogger("stb_origin.origin")

HLS_PATH = "/hls/{asset_id}/{path:path}"
# The same files under a signed-URL segment (playback.urlsign).
SIGNED_HLS_PATH = "/hls/st={token}/{asset_id}/{path:path}"
RETRY_AFTER_S = 5
# The ASGI extension by which the server sends a file itself (granian has it).
PATHSEND = "http.response.pathsend"


def routes(storage: Storage, *, playlist_max_age_s: int = PLAYLIST_MAX_AGE_S,
           cache: ObjectCache | None = None,
           access: HlsAccess | None = None,
           takedowns: Takedowns | None = None,
           generated: GeneratedPlaylists | None = None) -> list[BaseRoute]:
    """``cache``: the in-memory copy to use; by default one of the standard size
    that keeps playlists no longer than the CDN is told to (``playlist_max_age_s``).
    ``access``: who may ask; by default anyone. ``takedowns``: how deleted assets
    are learnt of (``takedowns.Takedowns``); None only for an origin on its own.
    ``generated``: the playlists made on request (a channel's, ``live``)."""
    if playlist_max_age_s < 0:
        raise SettingsError("STB_PLAYLIST_MAX_AGE_S must be 0 or more")
    if cache is None:
        cache = ObjectCache(mutable_ttl_s=min(MUTABLE_TTL_S, playlist_max_age_s))
    objects = Objects(storage, cache, takedowns)
    guard = access or HlsAccess()

    async def hls(request: Request) -> Response:
        refusal = guard.refusal(request)
        if refusal is not None:
            return error_response(403, "forbidden", refusal,
                                  {**CORS_HEADERS, "Cache-Control": NO_STORE})
        return await serve(storage, objects, request, playlist_max_age_s, generated)

    methods = ["GET", "HEAD", "OPTIONS"]
    # The signed form first: the plain pattern would take "st=..." for an asset id.
    return [Route(SIGNED_HLS_PATH, hls, methods=methods, name="signed_hls"),
            Route(HLS_PATH, hls, methods=methods, name="hls")]


def build_app(storage: Storage, *, playlist_max_age_s: int = PLAYLIST_MAX_AGE_S,
              cache: ObjectCache | None = None, access: HlsAccess | None = None) -> Starlette:
    """The origin on its own, with the JSON error handlers of the main app."""
    return Starlette(routes=routes(storage, playlist_max_age_s=playlist_max_age_s,
                                   cache=cache, access=access),
                     exception_handlers=EXCEPTION_HANDLERS)


def not_found() -> Response:
    return error_response(404, "not_found", "no such file",
                          {**CORS_HEADERS, "Cache-Control": NOT_FOUND_CACHE_CONTROL})


def storage_failed(exc: StorageError, key: str) -> Response:
    if isinstance(exc, ObjectNotFound | InvalidKey):
        return not_found()
    if isinstance(exc, StorageUnavailable):
        log.warning("storage unavailable", extra={"key": key, "error": str(exc)})
    else:
        log.error("storage error", extra={"key": key, "error": str(exc)})
    return error_response(503, "storage_unavailable", "storage is unavailable; try again",
                          {**CORS_HEADERS, "Cache-Control": NO_STORE,
                           "Retry-After": str(RETRY_AFTER_S)})


async def _find(storage: Storage, objects: Objects, target: HlsPath,
                playlist_max_age_s: int, server_sends_files: bool,
                generated: GeneratedPlaylists | None) -> Found | Response:
    """The object the path names, a filtered master made from the master, or a
    generated playlist."""
    if generated is not None and generated.handles(target.parts):
        made = await generated.generate(target.asset_id, target.parts)
        if made is None:
            return not_found()
        etag = '"' + hashlib.blake2b(made.body, digest_size=12).hexdigest() + '"'
        info = ObjectInfo(target.key, len(made.body), etag, made.last_modified,
                          target.content_type)
        return Found(info, made.body, made.cache_control)
    if server_sends_files and target.is_versioned and not target.is_playlist:
        return await objects.find_file(target.key)
    name = target.parts[0] if len(target.parts) == 1 else None
    if name is None or parse_name(name) is None:
        return await objects.find(target.key, is_immutable(target))
    master_key = layout.master_key(target.asset_id)
    master = await objects.find(master_key, False)
    body = master.body
    if body is None:  # too big to keep: never for a real master, but still correct
        body = await run_in_threadpool(lambda: b"".join(storage.read_chunks(master_key)))
    try:
        form = filtered(body, name)
    except ValueError:  # not a master playlist
        return not_found()
    if form.name is None:  # the ladder has nothing this filter keeps
        return not_found()
    if form.body is None:
        # Another spelling of a form: one URL per result keeps the CDN to one
        # copy. Relative, so a signed-URL segment is kept.
        return Response(status_code=301, headers={
            **CORS_HEADERS, "Location": form.name,
            "Cache-Control": cache_control(target, playlist_max_age_s)})
    info = replace(master.info, key=target.key, size=len(form.body),
                   etag=form_etag(master.info.etag, name))
    return Found(info, form.body)


def _joined(request: Request, name: str) -> str | None:
    # A header sent several times is one comma-separated list (RFC 9110 §5.3).
    values = request.headers.getlist(name)
    return ", ".join(values) if values else None


async def serve(storage: Storage, objects: Objects, request: Request,
                playlist_max_age_s: int = PLAYLIST_MAX_AGE_S,
                generated: GeneratedPlaylists | None = None) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=PREFLIGHT_HEADERS)

    target = parse_hls_path(request.path_params["asset_id"], request.path_params["path"],
                            request.scope.get("raw_path"))
    if target is None:
        return not_found()
    try:
        found = await _find(storage, objects, target, playlist_max_age_s,
                            server_sends_files=PATHSEND in request.scope.get("extensions", {}),
                            generated=generated)
    except StorageError as exc:
        return storage_failed(exc, target.key)
    if isinstance(found, Response):
        return found
    info = found.info

    headers = {
        **CORS_HEADERS,
        "Accept-Ranges": "bytes",
        "Cache-Control": found.cache_control or cache_control(target, playlist_max_age_s),
        "ETag": info.etag,
        "Last-Modified": http_date(info.last_modified),
    }
    verdict = evaluate_preconditions(
        request.method, info.etag, info.last_modified,
        if_match=_joined(request, "if-match"),
        if_none_match=_joined(request, "if-none-match"),
        if_modified_since=request.headers.get("if-modified-since"),
        if_unmodified_since=request.headers.get("if-unmodified-since"),
    )
    if verdict == 304:
        return Response(status_code=304, headers=headers)
    if verdict == 412:
        return error_response(412, "precondition_failed", "precondition failed",
                              {**CORS_HEADERS, "Cache-Control": NO_STORE})

    byte_range = None
    # Range is defined for GET only (RFC 9110 §14.2): HEAD describes the full 200.
    if request.method == "GET" and if_range_allows(request.headers.get("if-range"),
                                                   info.etag, info.last_modified):
        try:
            byte_range = parse_range(request.headers.get("range"), info.size)
        except RangeNotSatisfiable as exc:
            return error_response(416, "range_not_satisfiable", "range not satisfiable",
                                  {**CORS_HEADERS, "Accept-Ranges": "bytes",
                                   "Cache-Control": NO_STORE,
                                   "Content-Range": exc.content_range})

    status, start, end, length = 200, 0, None, info.size
    if byte_range is not None:
        status, start, end, length = 206, byte_range.start, byte_range.end, byte_range.length
        headers["Content-Range"] = byte_range.content_range(info.size)

    if request.method == "HEAD":
        return Response(status_code=status, media_type=target.content_type,
                        headers={**headers, "Content-Length": str(length)})

    if found.body is not None:  # held in memory: the same headers, the bytes from the copy
        return Response(found.body[start:start + length], status_code=status,
                        headers=headers, media_type=target.content_type)

    if (status == 200 and target.is_versioned and PATHSEND in request.scope.get("extensions", {})
            and (path := storage.local_path(target.key)) is not None):  # what _find skipped
        return PathSendResponse(path, length, headers, target.content_type)

    chunks = storage.read_chunks(target.key, start, end)
    try:
        # Read the first chunk before answering, so that an object that vanished
        # or a store that went down since the stat still gets a proper status.
        first = await run_in_threadpool(next, chunks, b"")
    except StorageError as exc:
        await run_in_threadpool(close_chunks, chunks)
        return storage_failed(exc, target.key)
    return ObjectResponse(first, chunks, length, status, headers, target.content_type)
