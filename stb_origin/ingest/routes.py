"""The ingest API: upload a master, follow its progress, list and delete assets
(and, in sidecar_routes, add and remove an asset's sidecar tracks)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.assets import records, runs
from stb_origin.assets.announce import DELETED, asset_changed
from stb_origin.assets.records import Status
from stb_origin.catalog.titles import titles_playing
from stb_origin.db import changes, stamps
from stb_origin.drm import keystore
from stb_origin.ingest import idempotency, sidecar_routes, tus_routes
from stb_origin.ingest.leftovers import kept_fresh, upload_dir
from stb_origin.ingest.service import UnknownPackages, accept_source
from stb_origin.ingest.sniff import container_of
from stb_origin.ingest.upload import Upload, kept_or_refused, receive_upload
from stb_origin.origin.takedowns import Takedowns
from stb_origin.pipeline import queue_run
from stb_origin.services import Services
from stb_origin.storage import StorageError, layout
from stb_origin.web.bearer import require_scope
from stb_origin.web.errors import ApiError
from stb_origin.web.http import json_response, path_id, services_of
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.ingest")


async def create_asset(request: Request) -> Response:
    services = services_of(request)
    claims = await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    key = idempotency.parse_key(request.headers.getlist(idempotency.HEADER))

    async def receive() -> Upload:
        return await _receive(request, services)

    async def accept(upload: Upload) -> idempotency.Accepted:
        body = await _accept(services, upload, claims.subject)
        return idempotency.Accepted(202, body, _location(body))

    if key is not None:
        return await idempotency.answer_once(services, claims.subject, key, receive,
                                             idempotency.fingerprint, accept)
    done = await accept(await receive())
    return json_response(done.body, status=done.status, location=done.location)


async def _receive(request: Request, services: Services) -> Upload:
    settings = services.settings
    return await receive_upload(request, upload_dir(settings), settings.max_upload_bytes)


async def _accept(services: Services, upload: Upload, subject: str) -> dict[str, Any]:
    """Check and accept a received upload; its file is gone afterwards either way."""
    with kept_or_refused(upload):
        try:
            if container_of(upload.head) is None:
                raise ApiError(415, "unsupported_media_type",
                               "the file is not a video container we accept"
                               " (MP4/MOV, Matroska/WebM, MPEG-TS, MXF, AVI, FLV, MPEG-PS)")
            with kept_fresh(upload.path):
                body = await anyio.to_thread.run_sync(
                    accept_source, services, upload.path, upload.suffix, upload.title,
                    upload.size, upload.packages)
        except UnknownPackages as exc:
            listed = ", ".join(f'"{name}"' for name in exc.names)
            raise ApiError(400, "unknown_package",
                           f"no such package: {listed} (an admin creates packages with"
                           " POST /v1/packages); nothing was stored") from None
    log.info("asset uploaded", extra={"asset_id": body["id"], "bytes": upload.size,
                                      "subject": subject})
    return body


def _location(body: dict[str, Any]) -> str:
    return f"/v1/assets/{body['id']}"


async def get_asset(request: Request) -> Response:
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_READ)
    asset_id = path_id(request, "asset_id", "asset")

    def load() -> dict[str, object] | None:
        with services.db.session() as session:
            asset = records.get(session, asset_id)
            return asset.to_json() if asset is not None else None

    body = await anyio.to_thread.run_sync(load)
    if body is None:
        raise ApiError(404, "not_found", "no such asset")
    return json_response(body)


async def list_assets(request: Request) -> Response:
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_READ)
    limit, after = page_params(request)

    def load() -> list[dict[str, object]]:
        with services.db.session() as session:
            return [a.to_json() for a in records.page(session, limit + 1, after)]

    return paged(await anyio.to_thread.run_sync(load), limit, "/v1/assets", "id")


async def retry_asset(request: Request) -> Response:
    """A failed asset gets a fresh round of attempts (after someone fixed what failed
    it: a full disk, a storage outage, a bug); 409 unless it is failed."""
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    asset_id = path_id(request, "asset_id", "asset")

    def retry() -> tuple[int | None, dict[str, object] | None]:
        with services.db.session() as session:
            attempt = runs.republish(session, asset_id, statuses=(Status.FAILED,))
            asset = records.get(session, asset_id)
            body = asset.to_json() if asset is not None else None
        if attempt is not None:
            # Committed. Both best effort: the record says queued, and the reconciler
            # enqueues the job if Redis was away.
            queue_run(services, asset_id, attempt)
            asset_changed(services.redis, asset_id, Status.QUEUED.value, 0)
        return attempt, body

    attempt, body = await anyio.to_thread.run_sync(retry)
    if body is None:
        raise ApiError(404, "not_found", "no such asset")
    if attempt is None:
        raise ApiError(409, "not_failed", f"the asset is {body['status']}: only a failed"
                       " asset is retried (a ready one is republished by changing its tracks)")
    log.info("asset retried", extra={"asset_id": asset_id})
    return json_response(body, status=202, location=f"/v1/assets/{asset_id}")


async def delete_asset(request: Request) -> Response:
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    asset_id = path_id(request, "asset_id", "asset")
    takedowns: Takedowns = request.app.state.takedowns

    def remove() -> bool:
        with services.db.session() as session:
            asset = records.get(session, asset_id)
            if asset is None:
                return False
            # Announced before anything is deleted: from here on no origin process
            # serves the asset from memory or keeps what it reads of it.
            takedowns.take_down(asset_id)
            # Master first so playback stops before the segments disappear.
            services.storage.delete_prefix(layout.master_key(asset_id))
            services.storage.delete_prefix(layout.asset_prefix(asset_id))
            services.storage.delete_prefix(layout.source_prefix(asset_id))
            services.storage.delete_prefix(layout.spans_prefix(asset_id))
            keystore.delete_for_asset(session, asset_id)
            # The titles it played in change on boxes (sync); their links go with it.
            changes.record(session, changes.TITLE, titles_playing(session, asset_id))
            session.delete(asset)
        # Committed: key servers' copies of its keys and packages are stale now.
        stamps.renew(services.redis, stamps.asset(asset_id))
        asset_changed(services.redis, asset_id, DELETED, 0)
        return True

    try:
        found = await anyio.to_thread.run_sync(remove)
    except StorageError:
        raise ApiError(503, "storage_unavailable", "storage is unavailable; try again",
                       {"Retry-After": "5"}) from None
    except RedisError:
        raise ApiError(503, "unavailable", "the takedown could not be announced to the origins"
                       " (Redis is unavailable); nothing was deleted, try again",
                       {"Retry-After": "5"}) from None
    if not found:
        raise ApiError(404, "not_found", "no such asset")
    log.info("asset deleted", extra={"asset_id": asset_id})
    return Response(status_code=204)


ROUTES = [
    Route("/v1/assets", create_asset, methods=["POST"]),
    Route("/v1/assets", list_assets, methods=["GET"]),
    Route("/v1/assets/{asset_id:str}", get_asset, methods=["GET"]),
    Route("/v1/assets/{asset_id:str}", delete_asset, methods=["DELETE"]),
    Route("/v1/assets/{asset_id:str}/retry", retry_asset, methods=["POST"]),
    *sidecar_routes.ROUTES,
    *tus_routes.ROUTES,
]
