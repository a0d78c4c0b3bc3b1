"""The ingest API: upload a master, follow its progress, list and delete assets."""

from __future__ import annotations

import logging

import anyio
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stb_origin.auth.http import require_scope
from stb_origin.drm import keystore
from stb_origin.errors import ApiError
from stb_origin.ingest import records
from stb_origin.ingest.service import UnknownPackages, accept_source
from stb_origin.ingest.sniff import container_of
from stb_origin.ingest.upload import receive_upload
from stb_origin.pagination import page_params
from stb_origin.services import Services
from stb_origin.storage import StorageError

log = logging.getLogger("stb_origin.ingest")



def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def create_asset(request: Request) -> Response:
    services = _services(request)
    claims = await require_scope(request, services.signer, "assets:write")
    settings = services.settings
    upload = await receive_upload(request, settings.work_dir / "uploads",
                                  settings.max_upload_bytes)
    try:
        if container_of(upload.head) is None:
            raise ApiError(415, "unsupported_media_type",
                           "the file is not a video container we accept"
                           " (MP4/MOV, Matroska/WebM, MPEG-TS, MXF, AVI, FLV, MPEG-PS)")
        body = await anyio.to_thread.run_sync(
            accept_source, services, upload.path, upload.suffix, upload.title, upload.size,
            upload.packages)
    except UnknownPackages as exc:
        listed = ", ".join(f'"{name}"' for name in exc.names)
        raise ApiError(400, "unknown_package",
                       f"no such package: {listed} (an admin creates packages with"
                       " POST /v1/packages); nothing was stored") from None
    except (StorageError, RedisError):
        raise ApiError(503, "unavailable", "storage or the job queue is unavailable; try again",
                       {"Retry-After": "10"}) from None
    finally:
        upload.path.unlink(missing_ok=True)
    log.info("asset uploaded", extra={"asset_id": body["id"], "bytes": upload.size,
                                      "subject": claims.subject})
    return JSONResponse(body, status_code=202,
                        headers={"Location": f"/v1/assets/{body['id']}"})


async def get_asset(request: Request) -> Response:
    services = _services(request)
    await require_scope(request, services.signer, "assets:read")
    asset_id = request.path_params["asset_id"]

    def load() -> dict[str, object] | None:
        with services.db.session() as session:
            asset = records.get(session, asset_id)
            return asset.to_json() if asset is not None else None

    body = await anyio.to_thread.run_sync(load)
    if body is None:
        raise ApiError(404, "not_found", "no such asset")
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def list_assets(request: Request) -> Response:
    services = _services(request)
    await require_scope(request, services.signer, "assets:read")
    limit, after = page_params(request)

    def load() -> list[dict[str, object]]:
        with services.db.session() as session:
            return [a.to_json() for a in records.page(session, limit + 1, after)]

    items = await anyio.to_thread.run_sync(load)
    more = len(items) > limit
    items = items[:limit]
    return JSONResponse({
        "items": items,
        "next": f"/v1/assets?limit={limit}&after={items[-1]['id']}" if more else None,
    }, headers={"Cache-Control": "no-store"})


async def delete_asset(request: Request) -> Response:
    services = _services(request)
    await require_scope(request, services.signer, "assets:write")
    asset_id = request.path_params["asset_id"]

    def remove() -> bool:
        with services.db.session() as session:
            asset = records.get(session, asset_id)
            if asset is None:
                return False
            # Announced before anything is deleted: from here on no origin process
            # serves the asset from memory or keeps what it reads of it.
            services.takedowns.take_down(asset_id)
            # Master first so playback stops before the segments disappear.
            services.storage.delete_prefix(f"hls/{asset_id}/master.m3u8")
            services.storage.delete_prefix(f"hls/{asset_id}/")
            services.storage.delete_prefix(f"sources/{asset_id}/")
            keystore.delete_for_asset(session, asset_id)
            session.delete(asset)
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
]
