"""tus 1.0 resumable uploads at /v1/uploads (core, creation, creation-with-upload,
termination, expiration, checksum): a master sent in pieces over many requests,
which becomes one asset when its last byte is in (ingest.resumable)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.db.types import utcnow
from stb_origin.ingest import resumable, tus
from stb_origin.ingest import tus_records as records
from stb_origin.ingest.resumable import NotAMediaContainer, TooManyUploads, Writing
from stb_origin.ingest.service import UnknownPackages
from stb_origin.ingest.tus_records import Lease, LeaseLost, Locked, TusUpload
from stb_origin.ingest.upload import storing_error, unavailable
from stb_origin.services import Services
from stb_origin.storage import StorageError
from stb_origin.web.bearer import require_scope
from stb_origin.web.cors import UPLOAD_HEADERS, UPLOAD_PREFLIGHT_HEADERS
from stb_origin.web.errors import ApiError, error_response
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import path_id, services_of

log = logging.getLogger("stb_origin.ingest")

BASE = "/v1/uploads"
# A request body silent this long is given up (its bytes so far are kept).
IDLE_S = 60.0
WRITE_BATCH_BYTES = 1024 * 1024
Handler = Callable[[Request], Awaitable[Response]]


def _answer(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers={
        "Tus-Resumable": tus.VERSION, **UPLOAD_HEADERS, **NO_STORE, **(headers or {})})


def _tus(handler: Handler) -> Handler:
    """Errors too carry Tus-Resumable and the CORS headers: a browser's tus client
    must be able to read their status."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, {
                "Tus-Resumable": tus.VERSION, **UPLOAD_HEADERS, **NO_STORE,
                **(exc.headers or {})})
    return endpoint


async def options(request: Request) -> Response:
    # The tus capabilities and a CORS preflight's answer at once: neither needs a token.
    services = services_of(request)
    return Response(status_code=204, headers={
        "Tus-Resumable": tus.VERSION, "Tus-Version": tus.VERSION,
        "Tus-Extension": tus.EXTENSIONS,
        "Tus-Max-Size": str(services.settings.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUMS), **UPLOAD_PREFLIGHT_HEADERS})


# -- creation ---------------------------------------------------------------------------


async def create(request: Request) -> Response:
    services = services_of(request)
    tus.check_version(request.headers)
    claims = await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    if "upload-defer-length" in request.headers:
        raise ApiError(400, "bad_request", "Upload-Defer-Length is not supported:"
                       " send Upload-Length")
    length = tus.parse_size("Upload-Length", request.headers.get("upload-length"))
    if length == 0:
        raise ApiError(400, "empty_file", "the file is empty (Upload-Length: 0)")
    limit = services.settings.max_upload_bytes
    if length > limit:
        raise ApiError(413, "payload_too_large", f"the file is larger than {limit} bytes")
    header = request.headers.get("upload-metadata", "")
    metadata = tus.parse_metadata(header)
    with_upload = _body_type(request)
    try:
        upload = await anyio.to_thread.run_sync(
            resumable.create, services, claims.subject, length, metadata, header)
    except TooManyUploads:
        raise ApiError(429, "too_many_uploads", "you have "
                       f"{services.settings.uploads_per_user} unfinished uploads: finish"
                       " or terminate (DELETE) one, or let it expire, before starting"
                       " another") from None
    except UnknownPackages as exc:
        raise _unknown_packages(exc) from None
    except Exception as exc:
        raise _refusal(exc) from exc
    headers = {"Location": f"{BASE}/{upload.id}"}
    if with_upload:
        headers.update(await _write(request, services, upload))
    headers.setdefault("Upload-Expires", tus.http_date(upload.expires_at))
    log.info("upload created", extra={"upload_id": upload.id, "bytes": length,
                                      "subject": claims.subject})
    return _answer(201, headers)


def _body_type(request: Request) -> bool:
    """Whether the request carries upload bytes (415 for a body of another type)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == tus.OFFSET_OCTET_STREAM:
        return True
    if request.headers.get("content-length", "0") not in ("", "0") or content_type:
        raise ApiError(415, "unsupported_media_type",
                       f"upload bytes are sent as {tus.OFFSET_OCTET_STREAM}")
    return False


# -- core: HEAD, PATCH --------------------------------------------------------------------


async def head(request: Request) -> Response:
    services = services_of(request)
    tus.check_version(request.headers)
    upload = await _own_upload(request, services)
    if upload.complete and upload.finished_at is None:
        # Every byte is in, but the request that should have made the asset died:
        # the client's next look makes it.
        upload = await _finish_if_free(services, upload)
    headers = {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length)}
    if upload.metadata_header:
        headers["Upload-Metadata"] = upload.metadata_header
    headers.update(_progress_headers(upload))
    return _answer(200, headers)


async def patch(request: Request) -> Response:
    services = services_of(request)
    tus.check_version(request.headers)
    if not _body_type(request):
        raise ApiError(415, "unsupported_media_type",
                       f"PATCH bodies are {tus.OFFSET_OCTET_STREAM}")
    offset = tus.parse_size("Upload-Offset", request.headers.get("upload-offset"))
    upload = await _own_upload(request, services)
    return _answer(204, await _write(request, services, upload, offset))


async def _write(request: Request, services: Services, upload: TusUpload,
                 offset: int = 0) -> dict[str, str]:
    """Write the request's bytes at ``offset`` under the upload's lease, and finish
    the upload if they were its last; the answer's headers."""
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    now = utcnow()
    try:
        held = await anyio.to_thread.run_sync(
            records.take, services.db, upload.id, now, resumable.LEASE_S)
    except Locked:
        raise ApiError(423, "upload_locked", "another request is writing this upload;"
                       " retry once it has ended", {"Retry-After": "5"}) from None
    try:
        upload = await anyio.to_thread.run_sync(_reload, services, upload.id)
        if offset != upload.offset:
            raise ApiError(409, "offset_mismatch", f"Upload-Offset is {offset} but the"
                           f" upload has {upload.offset} bytes: resume from there",
                           {"Upload-Offset": str(upload.offset)})
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > upload.length - upload.offset:
            raise _too_long(upload)
        if upload.finished_at is None:
            await _receive(request, services, upload, held, checksum)
            if upload.complete:
                await _finish(services, upload, held)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(records.release, services.db, held)
    return {"Upload-Offset": str(upload.offset), **_progress_headers(upload)}


def _reload(services: Services, upload_id: str) -> TusUpload:
    with services.db.session() as session:
        upload = records.get(session, upload_id)
    if upload is None:
        raise _not_found()
    return upload


async def _receive(request: Request, services: Services, upload: TusUpload, lease: Lease,
                   checksum: tus.Checksum | None) -> None:
    """The body into storage; the upload's offset moves as its bytes become durable."""
    try:
        writing = await anyio.to_thread.run_sync(Writing, services, upload, lease, checksum)
    except Exception as exc:
        raise _refusal(exc) from exc
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as renewing:
            renewing.start_soon(_renew, services, writing)
            try:
                await _stream(request, writing, upload.length - upload.offset)
            except (ClientDisconnect, TimeoutError):
                pass  # keep what came: the client resumes from the offset HEAD gives
            except Exception as exc:  # raised below, outside the task group that would wrap it
                failure = exc
            renewing.cancel_scope.cancel()
    finally:
        # Also when the server stops mid-request: what came is kept.
        with anyio.CancelScope(shield=True):
            await _close(writing, keep=failure is None)
    if isinstance(failure, NotAMediaContainer):
        await anyio.to_thread.run_sync(resumable.terminate, services, upload, lease)
        raise ApiError(415, "unsupported_media_type", "the file is not a video container we"
                       " accept (MP4/MOV, Matroska/WebM, MPEG-TS, MXF, AVI, FLV, MPEG-PS);"
                       " the upload was deleted")
    if isinstance(failure, _TooLong):
        raise _too_long(upload)
    if isinstance(failure, LeaseLost):
        raise _lease_lost()
    if failure is not None:
        raise _refusal(failure) from failure
    if writing.checksum_failed:
        raise ApiError(460, "checksum_mismatch", "the body does not match Upload-Checksum;"
                       f" it was discarded, resume from offset {upload.offset}",
                       {"Upload-Offset": str(upload.offset)})


async def _close(writing: Writing, keep: bool) -> None:
    try:
        await anyio.to_thread.run_sync(writing.close, keep)
    except LeaseLost:
        raise _lease_lost() from None
    except Exception as exc:
        raise _refusal(exc) from exc


def _refusal(exc: Exception) -> ApiError:
    """503 or 507 when storage (or the database on a full disk) could not keep the
    bytes; any other error is a bug and goes on up as it is."""
    if isinstance(exc, ApiError):
        return exc
    refusal = storing_error(exc)
    if refusal is None and isinstance(exc, StorageError | RedisError):
        refusal = unavailable()
    if refusal is None:
        raise exc
    return refusal


class _TooLong(Exception):
    pass


async def _stream(request: Request, writing: Writing, room: int) -> None:
    pending = bytearray()
    received = 0
    chunks = request.stream().__aiter__()
    while True:
        with anyio.fail_after(IDLE_S):
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
        received += len(chunk)
        if received > room:
            raise _TooLong
        pending += chunk
        if len(pending) >= WRITE_BATCH_BYTES:
            await anyio.to_thread.run_sync(writing.write, bytes(pending))
            pending.clear()
    if pending:
        await anyio.to_thread.run_sync(writing.write, bytes(pending))


async def _renew(services: Services, writing: Writing) -> None:
    while True:
        await anyio.sleep(resumable.RENEW_EVERY_S)
        try:
            await anyio.to_thread.run_sync(records.renew, services.db, writing.lease,
                                           utcnow(), resumable.LEASE_S)
        except LeaseLost:
            writing.valid_until = 0.0  # the next write stops
            return
        except Exception:  # the database for a moment: the lease runs on a while
            log.warning("could not renew an upload's lease", exc_info=True)
            continue
        writing.lease_renewed()


async def _finish(services: Services, upload: TusUpload, lease: Lease) -> None:
    try:
        await anyio.to_thread.run_sync(resumable.finish, services, upload, lease)
    except UnknownPackages as exc:
        raise _unknown_packages(exc) from None
    except LeaseLost:
        raise _lease_lost() from None
    except Exception as exc:
        raise _refusal(exc) from exc


async def _finish_if_free(services: Services, upload: TusUpload) -> TusUpload:
    try:
        lease = await anyio.to_thread.run_sync(
            records.take, services.db, upload.id, utcnow(), resumable.LEASE_S)
    except Locked:
        return upload  # the request that holds it finishes it
    try:
        upload = await anyio.to_thread.run_sync(_reload, services, upload.id)
        if upload.finished_at is None:
            await _finish(services, upload, lease)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(records.release, services.db, lease)
    return upload


def _progress_headers(upload: TusUpload) -> dict[str, str]:
    if upload.finished_at is not None:
        return {"Stb-Asset": upload.asset_id}
    return {"Upload-Expires": tus.http_date(upload.expires_at)}


# -- termination ---------------------------------------------------------------------------


async def terminate(request: Request) -> Response:
    services = services_of(request)
    tus.check_version(request.headers)
    upload = await _own_upload(request, services)
    try:
        lease = await anyio.to_thread.run_sync(
            records.take, services.db, upload.id, utcnow(), resumable.LEASE_S)
    except Locked:
        raise ApiError(423, "upload_locked", "a request is writing this upload; retry"
                       " once it has ended", {"Retry-After": "5"}) from None
    try:
        await anyio.to_thread.run_sync(resumable.terminate, services, upload, lease)
    except Exception as exc:
        await anyio.to_thread.run_sync(records.release, services.db, lease)
        raise _refusal(exc) from exc
    log.info("upload terminated", extra={"upload_id": upload.id})
    return _answer(204)


# -- shared steps ------------------------------------------------------------------------


async def _own_upload(request: Request, services: Services) -> TusUpload:
    """The caller's upload: 404 for anyone else's (its existence is not theirs to
    learn), 410 once expired."""
    claims = await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    upload_id = path_id(request, "upload_id", "upload")

    def load() -> TusUpload | None:
        with services.db.session() as session:
            return records.get(session, upload_id)

    upload = await anyio.to_thread.run_sync(load)
    if upload is None or upload.owner != claims.subject:
        raise _not_found()
    if _expired(upload, utcnow()):
        raise ApiError(410, "upload_expired", "this upload expired and its bytes were"
                       " deleted; start a new one")
    return upload


def _expired(upload: TusUpload, now: datetime) -> bool:
    return upload.finished_at is None and upload.expires_at <= now


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such upload")


def _too_long(upload: TusUpload) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body goes past Upload-Length"
                    f" ({upload.length} bytes); it was discarded",
                    {"Upload-Offset": str(upload.offset)})


def _lease_lost() -> ApiError:
    return ApiError(409, "upload_taken_over", "this request lost its hold on the upload"
                    " to another; resume from the offset HEAD gives")


def _unknown_packages(exc: UnknownPackages) -> ApiError:
    listed = ", ".join(f'"{name}"' for name in exc.names)
    return ApiError(400, "unknown_package", f"no such package: {listed} (an admin creates"
                    " packages with POST /v1/packages); nothing was kept")


ROUTES = [
    Route(BASE, _tus(create), methods=["POST"]),
    Route(BASE, _tus(options), methods=["OPTIONS"]),
    Route(BASE + "/{upload_id:str}", _tus(head), methods=["HEAD"]),
    Route(BASE + "/{upload_id:str}", _tus(patch), methods=["PATCH"]),
    Route(BASE + "/{upload_id:str}", _tus(terminate), methods=["DELETE"]),
    Route(BASE + "/{upload_id:str}", _tus(options), methods=["OPTIONS"]),
]
