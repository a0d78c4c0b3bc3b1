"""The sidecar track API: add an audio or subtitle file to an asset, list, remove.

The file is the whole request body, streamed to disk like a master; what it is
comes as query parameters, so that the body needs no form around it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
from python_multipart.multipart import parse_options_header
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.assets import records
from stb_origin.assets.tracks import Kind
from stb_origin.ingest import idempotency, sidecars
from stb_origin.ingest.leftovers import kept_fresh, upload_dir
from stb_origin.ingest.sidecars import FILE_TYPES, FileType, TrackFacts
from stb_origin.ingest.sniff import audio_format_of
from stb_origin.ingest.subtitle_files import MAX_BYTES as MAX_SUBTITLE_BYTES
from stb_origin.ingest.subtitle_files import SubtitleError
from stb_origin.ingest.upload import Upload, kept_or_refused, receive_body
from stb_origin.services import Services
from stb_origin.transcode import MediaError, probe_audio_file
from stb_origin.transcode.audio import clean_label
from stb_origin.transcode.languages import bcp47, language_name
from stb_origin.web.bearer import require_scope
from stb_origin.web.errors import ApiError, missing_field_message, unknown_fields_message
from stb_origin.web.http import json_response, path_id, services_of

PARAMETERS = ("kind", "language", "name", "forced")
MAX_NAME_BYTES = 200
FALLBACK_NAMES = {Kind.AUDIO: "Audio", Kind.SUBTITLES: "Subtitles"}
FORCED = {"true": True, "false": False}
FORMAT_NAMES = {"wav": "WAV", "aac": "AAC (ADTS)", "mp4": "AAC in MP4 (.m4a)"}


async def add_track(request: Request) -> Response:
    services = services_of(request)
    claims = await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    asset_id = path_id(request, "asset_id", "asset")
    facts = track_facts(request)
    content_type, file_type = _file_type(request, facts.kind)
    key = idempotency.parse_key(request.headers.getlist(idempotency.HEADER))
    if not await anyio.to_thread.run_sync(_asset_exists, services, asset_id):
        raise ApiError(404, "not_found", "no such asset")
    limit = services.settings.max_upload_bytes
    if facts.kind == Kind.SUBTITLES:
        limit = min(limit, MAX_SUBTITLE_BYTES)

    async def receive() -> Upload:
        return await receive_body(request, upload_dir(services.settings), limit)

    def fingerprint(upload: Upload) -> str:
        return idempotency.digest({"file_sha256": upload.sha256, "asset": asset_id,
                                   "content_type": content_type, **dataclasses.asdict(facts)})

    async def accept(upload: Upload) -> idempotency.Accepted:
        body = await _accept(services, asset_id, facts, upload, content_type, file_type)
        return idempotency.Accepted(201, body)

    if key is not None:
        return await idempotency.answer_once(services, claims.subject, key, receive,
                                             fingerprint, accept)
    done = await accept(await receive())
    return json_response(done.body, status=done.status)


async def _accept(services: Services, asset_id: str, facts: TrackFacts, upload: Upload,
                  content_type: str, file_type: FileType) -> dict[str, Any]:
    """Check and keep a received track; its file is gone afterwards either way."""
    with kept_or_refused(upload):
        try:
            await _check(services, upload, content_type, file_type)
            with kept_fresh(upload.path):
                return await anyio.to_thread.run_sync(
                    sidecars.add_track, services, asset_id, facts, upload.path, file_type)
        except sidecars.AssetGone:
            raise ApiError(404, "not_found", "no such asset") from None
        except sidecars.TooManyTracks:
            raise ApiError(409, "too_many_tracks", f"an asset has at most"
                           f" {sidecars.MAX_TRACKS} sidecar tracks; remove one first") from None


def track_facts(request: Request) -> TrackFacts:
    """The track's kind, language, name and forced flag from the query, checked."""
    query = request.query_params
    unknown = [name for name in query if name not in PARAMETERS]
    if unknown:
        raise ApiError(400, "bad_request", unknown_fields_message(unknown, PARAMETERS))
    repeated = sorted(name for name in PARAMETERS if len(query.getlist(name)) > 1)
    if repeated:
        raise ApiError(400, "bad_request", f"give {', '.join(repeated)} once")
    if "kind" not in query:
        raise ApiError(400, "bad_request", missing_field_message("kind", PARAMETERS))
    try:
        kind = Kind(query["kind"])
    except ValueError:
        raise ApiError(400, "bad_request", 'kind must be "audio" or "subtitles"') from None
    language = None
    if "language" in query:
        language = bcp47(query["language"])
        if language is None:
            raise ApiError(400, "invalid_language", "language must be a BCP-47 language tag"
                           " such as en, pt-BR or zh-Hant")
    raw_name = query.get("name", "")
    if len(raw_name.encode()) > MAX_NAME_BYTES:
        raise ApiError(400, "bad_request", f"name is longer than {MAX_NAME_BYTES} bytes")
    name = clean_label(raw_name) or language_name(language) or language or FALLBACK_NAMES[kind]
    forced = False
    if "forced" in query:
        if kind != Kind.SUBTITLES:
            raise ApiError(400, "bad_request", "forced is for subtitles only")
        if query["forced"] not in FORCED:
            raise ApiError(400, "bad_request", 'forced must be "true" or "false"')
        forced = FORCED[query["forced"]]
    return TrackFacts(kind, language, name, forced)


def _file_type(request: Request, kind: Kind) -> tuple[str, FileType]:
    raw, _options = parse_options_header(request.headers.get("content-type", ""))
    content_type = raw.decode("latin-1").lower()
    file_type = FILE_TYPES.get(content_type)
    if file_type is None or file_type.kind != kind:
        accepted = ", ".join(t for t, f in FILE_TYPES.items() if f.kind == kind)
        raise ApiError(415, "unsupported_media_type",
                       f"send a {kind.value} track as the request body with a Content-Type"
                       f" of {accepted}")
    return content_type, file_type


async def _check(services: Services, upload: Upload, content_type: str,
                 file_type: FileType) -> None:
    if file_type.kind == Kind.SUBTITLES:
        try:
            await anyio.to_thread.run_sync(sidecars.to_webvtt, upload.path, content_type)
        except SubtitleError as exc:
            raise ApiError(422, "invalid_subtitles", str(exc)) from None
        return
    assert file_type.sniffed is not None
    if audio_format_of(upload.head) != file_type.sniffed:
        raise ApiError(415, "unsupported_media_type",
                       f"the body is not {FORMAT_NAMES[file_type.sniffed]} audio,"
                       f" as its Content-Type {content_type} says")
    try:
        # One audio stream, no video, a duration.
        await anyio.to_thread.run_sync(probe_audio_file, upload.path, services.settings)
    except MediaError as exc:
        raise ApiError(422, exc.code, exc.message) from None


def _asset_exists(services: Services, asset_id: str) -> bool:
    with services.db.session() as session:
        return records.get(session, asset_id) is not None


async def list_tracks(request: Request) -> Response:
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_READ)
    asset_id = path_id(request, "asset_id", "asset")
    items = await anyio.to_thread.run_sync(sidecars.list_tracks, services, asset_id)
    if items is None:
        raise ApiError(404, "not_found", "no such asset")
    return json_response({"items": items})


async def delete_track(request: Request) -> Response:
    services = services_of(request)
    await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    asset_id = path_id(request, "asset_id", "asset")
    track_id = path_id(request, "track_id", "track")
    if not await anyio.to_thread.run_sync(sidecars.remove_track, services, asset_id, track_id):
        raise ApiError(404, "not_found", "no such track")
    return Response(status_code=204)


ROUTES = [
    Route("/v1/assets/{asset_id:str}/tracks", add_track, methods=["POST"]),
    Route("/v1/assets/{asset_id:str}/tracks", list_tracks, methods=["GET"]),
    Route("/v1/assets/{asset_id:str}/tracks/{track_id:str}", delete_track, methods=["DELETE"]),
]
