"""The OpenAPI 3.1 document of every HTTP endpoint, served at GET /openapi.json.

Plain data built from small pieces, next to nothing computed: what a reader
sees here is what a client gets. ``tests/web/test_openapi.py`` fails when a
route of the app is missing here or listed here without a route, and
schemathesis checks every answer of a running server against it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin.scopes import ALL as SCOPES

Json = dict[str, Any]

PATH = "/openapi.json"
# The document changes only with a deployment.
CACHE_CONTROL = "public, max-age=300"

SCOPE_DESCRIPTIONS = {
    "assets:write": "upload and delete assets",
    "assets:read": "read assets: status and listing",
    "playback": "fetch keys and playback sessions (a box bound to a device, entitled)",
    "account": "one's own account: its devices, users and entitlements",
    "admin": "everyone's users, devices, packages, entitlements and the key audit"
             " (admin users and the operator's CLI tokens only)",
}

# --- small pieces -------------------------------------------------------------------


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(name: str) -> Json:
    return {"$ref": f"#/components/responses/{name}"}


def _nullable(schema: Json) -> Json:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: Json, required: list[str] | None = None, *,
            closed: bool = True) -> Json:
    """An object; ``required`` defaults to every property. Closed objects are
    the contract: a field added to an answer must be added here too."""
    schema: Json = {"type": "object", "properties": properties,
                    "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _header(description: str, required: bool = True, schema: Json | None = None) -> Json:
    return {"description": description, "required": required,
            "schema": schema or {"type": "string"}}


def _answer(description: str, schema: Json | None = None, *,
            headers: Json | None = None, media_type: str = "application/json") -> Json:
    response: Json = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: Json | None = None) -> Json:
    return _answer(description, _ref("Error"), headers=headers)


def _oauth_error(description: str, headers: Json | None = None) -> Json:
    return _answer(description, _ref("OAuthError"), headers=headers)


def _bearer(*scopes: str) -> list[Json]:
    """Any one of ``scopes``, in a token from the OAuth server or the operator's CLI."""
    return [{scheme: [scope]} for scope in scopes for scheme in ("oauth2", "bearerToken")]


def _path_param(name: str, description: str, schema: Json | None = None) -> Json:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string", "minLength": 1}}


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
_SCOPE = "(?:" + "|".join(sorted(SCOPES)) + ")"
SCOPE_LIST = {"type": "string", "pattern": f"^{_SCOPE}(?: {_SCOPE})*$",
              "description": "space-separated scopes"}
SERIAL = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}
MODEL = {"type": "string", "pattern": "^[ -~]{0,127}[!-~]$", "description": "printable ASCII"}
TIME = {"type": "string", "format": "date-time"}
LOCATION = {"Location": _header("where the new resource is")}
NO_STORE = {"Cache-Control": _header("never cached", schema={"type": "string",
                                                             "pattern": "no-store"})}


def _page_params() -> list[Json]:
    return [_query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 100,
                                          "default": 20}),
            _query("after", "the last item of the previous page, as `next` gives it")]


def _operation(summary: str, responses: Json, *, security: list[Json] | None = None,
               tags: list[str], parameters: list[Json] | None = None,
               body: Json | None = None, description: str | None = None) -> Json:
    operation: Json = {"summary": summary, "tags": tags, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["security"] = security if security is not None else []
    return operation


def _api(summary: str, scopes: tuple[str, ...], ok: Json, *, tags: list[str],
         errors: tuple[int, ...] = (), parameters: list[Json] | None = None,
         body: Json | None = None, description: str | None = None) -> Json:
    """An operation behind a bearer token: 401, 403 and 503 come with the token check."""
    responses = {**ok, "401": _response("Unauthorized"), "403": _response("Forbidden"),
                 "503": _response("Unavailable")}
    for status in errors:
        responses[str(status)] = _response(_ERROR_RESPONSES[status])
    return _operation(summary, dict(sorted(responses.items())), security=_bearer(*scopes),
                      tags=tags, parameters=parameters, body=body, description=description)


def _json_body(schema_name: str) -> Json:
    return {"required": True, "content": _json(_ref(schema_name))}


_ERROR_RESPONSES = {400: "BadRequest", 404: "NotFound", 409: "Conflict", 413: "TooLarge",
                    415: "UnsupportedMediaType", 507: "InsufficientStorage"}
_JSON_BODY_ERRORS = (400, 413, 415)

# --- schemas ------------------------------------------------------------------------


LOUDNESS = {
    "type": "object",
    "properties": {
        "input_i": {"type": "number", "description": "integrated loudness measured, LUFS"},
        "input_tp": {"type": "number", "description": "true peak measured, dBTP"},
        "input_lra": {"type": "number", "description": "loudness range, LU"},
        "input_thresh": {"type": "number"},
        "target_offset": {"type": "number"},
        "target_i": {"type": "number", "description": "-23 LUFS"},
        "target_tp": {"type": "number", "description": "-1 dBTP"},
        "gain_db": {"type": "number", "description": "the gain applied: target_i - input_i"},
        "linear": {"type": "boolean", "description": (
            "one gain over the whole track; false: the gain would lift a peak over"
            " target_tp, so loudnorm adjusted it dynamically")},
    },
}

MEDIA_RENDITION = {
    "type": "object",
    "required": ["name", "bandwidth", "average_bandwidth", "codecs", "segment_count"],
    "properties": {
        # Assets made before audio renditions existed have no type: they are video.
        "type": {"enum": ["video", "audio"]},
        "name": {"type": "string"},
        "bandwidth": {"type": "integer", "description": "peak bits per second"},
        "average_bandwidth": {"type": "integer"},
        "codecs": {"type": "string",
                   "description": "RFC 6381, e.g. avc1.64001f, hvc1.2.4.L123.90, mp4a.40.2, ec-3"},
        "segment_count": {"type": "integer"},
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "frame_rate": {"type": "number"},
        "video_range": {"enum": ["SDR", "PQ", "HLG"],
                        "description": "video: VIDEO-RANGE; PQ is HDR10, HLG hybrid log-gamma"},
        "group": {"type": "string", "description": "audio: GROUP-ID, audio-aac or audio-ec3"},
        "label": {"type": "string", "description": "audio: NAME, cleaned from the upload"},
        "language": {"type": ["string", "null"], "description": "audio: BCP-47, null if unknown"},
        "channels": {"type": "integer"},
        "default": {"type": "boolean", "description": "audio: DEFAULT=YES in its group"},
        "loudness": {**_nullable(LOUDNESS), "description": (
            "audio: what pass one of loudnorm measured and the gain pass two applied"
            " (EBU R128 target); null when normalisation is off or the track is silent")},
    },
}
SUBTITLE_RENDITION = {
    "type": "object",
    "required": ["type", "name", "group", "label", "language", "forced", "cue_count",
                 "segment_count"],
    "properties": {
        "type": {"enum": ["subtitles"]},
        "name": {"type": "string"},
        "group": {"enum": ["subs"], "description": "GROUP-ID of the EXT-X-MEDIA"},
        "label": {"type": "string", "description": "NAME, cleaned from the upload"},
        "language": {"type": ["string", "null"], "description": "BCP-47, null if unknown"},
        "forced": {"type": "boolean", "description": "FORCED=YES: the source said forced"},
        "cue_count": {"type": "integer"},
        "segment_count": {"type": "integer", "description": "the video's segments, WebVTT"},
    },
}
RENDITION = {"anyOf": [MEDIA_RENDITION, SUBTITLE_RENDITION]}


def _page_of(item: str) -> Json:
    return _object({"items": {"type": "array", "items": _ref(item)},
                    "next": _nullable({"type": "string"})})


def _schemas() -> Json:
    error_detail = _object({"code": {"type": "string"}, "message": {"type": "string"}})
    capabilities = _object({
        "max_width": _nullable({"type": "integer", "minimum": 1, "maximum": 16384}),
        "max_height": _nullable({"type": "integer", "minimum": 1, "maximum": 16384}),
        "codecs": {"type": "array", "maxItems": 32,
                   "items": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$"}},
        "video_ranges": {"type": "array", "maxItems": 2, "uniqueItems": True,
                         "items": {"enum": ["PQ", "HLG"]},
                         "description": "HDR the screen shows (PQ: HDR10); none: SDR only"},
    }, required=[])
    schemas: Json = {
        "Error": _object({"error": error_detail}),
        "OAuthError": _object({
            "error": {"type": "string", "enum": [
                "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "authorization_pending",
                "slow_down", "expired_token", "access_denied"]},
            "error_description": {"type": "string"},
        }),
        "Asset": _object({
            "id": ID,
            "title": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "processing", "ready", "failed"]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "error": {**_nullable(error_detail), "description": (
                "why it failed, or why the last attempt did while a retry waits;"
                " `code` names the cause: `disk_full` and `storage_unavailable` (an"
                " operator's to fix), `worker_lost` (its worker was killed),"
                " `internal_error`, or a problem with the media")},
            "attempt": {"type": "integer", "minimum": 1,
                        "description": "which attempt runs or waits (retries count up)"},
            "next_attempt_at": _nullable({**TIME, "description":
                                          "when a queued retry is due (after a failed attempt)"}),
            "duration_s": _nullable({"type": "number"}),
            "source": _nullable({"type": "object", "description": (
                "what ffprobe found: streams, subtitle_tracks (text or image),"
                " closed_captions, and warnings: what the package leaves out; under"
                " complexity, the analysis that set the bit rates (null: the caps)")}),
            "renditions": {"type": "array", "items": RENDITION, "description": (
                "what was published: each video rendition (listed in the master once per"
                " audio group), each audio rendition (an EXT-X-MEDIA of its group) and each"
                " subtitle rendition (an EXT-X-MEDIA of the subs group)")},
            "thumbnails": {"anyOf": [_object({
                "url": {"type": "string", "description": "one JPEG: the tiles in a row"},
                "count": {"type": "integer", "minimum": 1},
                "interval_s": {"type": "number", "description": (
                    "media time between two tiles; tile i shows time i * interval_s")},
                "width": {"type": "integer"}, "height": {"type": "integer"},
            }), {"type": "null"}], "description": (
                "a strip of thumbnails of the published version; null for an audio-only"
                " asset, or one not (yet) ready")},
            "playback": _object({"hls": {"type": "string"}}),
            "created_at": TIME,
            "updated_at": TIME,
        }),
        "AssetPage": _page_of("Asset"),
        "Track": _object({
            "id": ID, "asset": ID, "kind": {"type": "string", "enum": ["audio", "subtitles"]},
            "language": _nullable({"type": "string", "description": "BCP-47"}),
            "name": {"type": "string"}, "forced": {"type": "boolean"},
            "size": {"type": "integer", "description": "bytes stored"}, "created_at": TIME,
        }),
        "TrackList": _object({"items": {"type": "array", "items": _ref("Track")}}),
        "Upload": _object({
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": "the master: MP4/MOV, Matroska/WebM, MPEG-TS, MXF, AVI,"
                                    " FLV or MPEG-PS; or audio only (WAV, MP3, AAC, FLAC, an"
                                    " audio-only MP4 or Matroska), for an audio-only stream"},
            "title": {"type": "string", "maxLength": 500},
        }, required=["file"]),
        "User": _object({
            "id": ID, "account": ID, "email": {"type": "string"}, "name": {"type": "string"},
            "role": {"type": "string", "enum": ["subscriber", "editor", "admin"]},
            "has_password": {"type": "boolean"}, "created_at": TIME,
        }),
        "UserPage": _page_of("User"),
        "NewUser": _object({
            "email": {"type": "string", "maxLength": 320,
                      "pattern": "^[^@\\s]{1,64}@[^@\\s]+\\.[^@\\s]+$"},
            "name": {"type": "string", "maxLength": 200},
            "role": {"type": "string", "enum": ["subscriber", "editor", "admin"]},
            "password": {"type": "string", "minLength": 8, "maxLength": 1024},
            "account": {"type": "string", "description": "an existing account; else a new one"},
        }, required=["email"]),
        "Capabilities": capabilities,
        "Device": _object({
            "id": ID, "account": ID, "serial": {"type": "string"}, "model": {"type": "string"},
            "capabilities": _object({k: v for k, v in capabilities["properties"].items()}),
            "state": {"type": "string", "enum": ["active", "revoked"]},
            "created_at": TIME, "last_seen_at": _nullable(TIME), "revoked_at": _nullable(TIME),
        }),
        "DevicePage": _page_of("Device"),
        "NewDevice": _object({
            "serial": SERIAL,
            "model": MODEL,
            "capabilities": _ref("Capabilities"),
            "account": {"type": "string", "description": "required for a token without one"},
        }, required=["serial", "model"]),
        "Package": _object({"name": {"type": "string"}, "title": {"type": "string"},
                            "created_at": TIME}),
        "PackagePage": _page_of("Package"),
        "NewPackage": _object({
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "title": {"type": "string", "maxLength": 200},
        }, required=["name"]),
        "PackageAsset": _object({"package": {"type": "string"}, "asset": ID,
                                 "added_at": TIME}),
        "PackageAssetPage": _page_of("PackageAsset"),
        "NewPackageAsset": _object({"asset": ID}),
        "Entitlement": _object({
            "id": ID, "account": ID, "package": {"type": "string"}, "valid_from": TIME,
            "valid_until": _nullable(TIME), "created_at": TIME,
        }),
        "EntitlementPage": _page_of("Entitlement"),
        "NewEntitlement": _object({
            "account": {"type": "string"}, "package": {"type": "string"},
            "valid_from": {**TIME, "description": "with an offset; default now"},
            "valid_until": {**TIME, "description": "with an offset; default open-ended"},
        }, required=["account", "package"]),
        "KeyAuditEntry": _object({
            "id": ID, "at": TIME, "subject": {"type": "string"},
            "account": _nullable({"type": "string"}), "device": _nullable({"type": "string"}),
            "client": _nullable({"type": "string"}), "asset": {"type": "string"},
            "key_id": {"type": "string"},
            "outcome": {"type": "string", "description": "delivered, or why not"},
            "client_address": _nullable({"type": "string"}),
            "forwarded_for": _nullable({"type": "string"}),
            "request_id": _nullable({"type": "string"}),
        }),
        "KeyAuditPage": _page_of("KeyAuditEntry"),
        "Playback": _object({
            "asset": ID, "manifest_url": {"type": "string"},
            "expires_at": _nullable({**TIME, "description": "null when URLs are not signed"}),
        }),
        **_guide_schemas(),
        **_channel_schemas(),
        **_sync_schemas(),
        **_graph_schemas(),
        **_activity_schemas(),
        **_catalog_schemas(),
        **_event_schemas(),
        "Health": _object({"status": {"type": "string", "enum": ["ok"]}}),
        "Readiness": _object({
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "checks": _object({name: {"type": "string"}
                               for name in ("redis", "storage", "database")}),
            "pipeline": {**_object({
                "queued": {"type": "integer"}, "workers": {"type": "integer"},
                "stalled": {"type": "boolean"}}),
                "description": "jobs waiting and live workers (while Redis answers);"
                               " stalled: jobs wait and no worker runs"},
        }, required=["status", "checks"]),
        "DeviceAuthorizationRequest": _object({
            "client_id": {"type": "string"}, "client_secret": {"type": "string"},
            "scope": SCOPE_LIST, "device_serial": SERIAL, "device_model": MODEL,
            "device_capabilities": {"type": "string",
                                    "description": "JSON, as POST /v1/devices takes"},
        }, required=["device_serial", "device_model"], closed=False),
        "DeviceAuthorization": _object({
            "device_code": {"type": "string"}, "user_code": {"type": "string"},
            "verification_uri": {"type": "string"},
            "verification_uri_complete": {"type": "string"},
            "expires_in": {"type": "integer"}, "interval": {"type": "integer"},
        }),
        "TokenRequest": _object({
            "grant_type": {"type": "string", "enum": [
                "urn:ietf:params:oauth:grant-type:device_code", "refresh_token",
                "client_credentials"]},
            "client_id": {"type": "string"}, "client_secret": {"type": "string"},
            "device_code": {"type": "string"}, "refresh_token": {"type": "string"},
            "scope": SCOPE_LIST,
        }, required=["grant_type"], closed=False),
        "Tokens": _object({
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"}, "scope": {"type": "string"},
            "refresh_token": {"type": "string"},
        }, required=["access_token", "token_type", "expires_in", "scope"]),
        "RevocationRequest": _object({
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
            "client_id": {"type": "string"}, "client_secret": {"type": "string"},
        }, required=["token"], closed=False),
        "ServerMetadata": _object({
            "issuer": {"type": "string"}, "token_endpoint": {"type": "string"},
            "device_authorization_endpoint": {"type": "string"},
            "revocation_endpoint": {"type": "string"}, "jwks_uri": {"type": "string"},
            "grant_types_supported": {"type": "array", "items": {"type": "string"}},
            "response_types_supported": {"type": "array", "items": {"type": "string"}},
            "token_endpoint_auth_methods_supported": {"type": "array",
                                                      "items": {"type": "string"}},
            "revocation_endpoint_auth_methods_supported": {"type": "array",
                                                           "items": {"type": "string"}},
            "scopes_supported": {"type": "array", "items": {"type": "string"}},
        }),
        "JWKS": _object({"keys": {"type": "array", "items": _object({
            "kty": {"type": "string", "enum": ["EC"]}, "crv": {"type": "string"},
            "x": {"type": "string"}, "y": {"type": "string"}, "kid": {"type": "string"},
            "use": {"type": "string"}, "alg": {"type": "string", "enum": ["ES256"]},
        })}}),
        "DevicePageForm": _object({
            "csrf_token": {"type": "string"},
            "action": {"type": "string", "enum": ["sign_in", "sign_out", "enter_code",
                                                  "decide"]},
            "email": {"type": "string"}, "password": {"type": "string"},
            "user_code": {"type": "string"},
            "decision": {"type": "string", "enum": ["approve", "deny"]},
        }, required=["csrf_token", "action"], closed=False),
    }
    return {**schemas, **_clip_schemas(schemas["Asset"])}


def _clip_schemas(asset: Json) -> Json:
    window = _object({"channel": ID, "start": TIME, "end": TIME})
    return {
        "ClipRequest": _object({
            "start": {**TIME, "description": "with an offset; the clip starts with the"
                                             " segment running then"},
            "end": {**TIME, "description": "not in the future; the clip ends with the"
                                           " segment running then"},
            "title": {"type": "string", "minLength": 1, "maxLength": 500},
        }),
        # The new asset, and the window it was cut to (on segment boundaries).
        "ClipAsset": {**asset, "properties": {**asset["properties"], "clip": window},
                      "required": [*asset["required"], "clip"]},
    }


def _guide_schemas() -> Json:
    text = _nullable({"type": "string"})
    skipped_reasons = ["unknown_channel", "bad_time", "no_stop", "end_before_start",
                       "absurd_time", "overlap"]
    report = _object({
        "imported": {"type": "integer", "description": "programmes written"},
        "replaced": {"type": "integer", "description": "programmes they replaced: those of"
                     " the same channels overlapping the span the file brings"},
        "channels": {"type": "integer", "description": "channels that got programmes"},
        "skipped": {"type": "integer"},
        "skipped_by_reason": {"type": "object", "propertyNames": {"enum": skipped_reasons},
                              "additionalProperties": {"type": "integer"}},
        "problems": {"type": "array", "maxItems": 100, "items": _object({
            "reason": {"enum": skipped_reasons},
            "message": {"type": "string"},
            "xmltv_channel": {"type": "string"},
            "start": {"type": "string", "description": "as the file wrote it"},
            "title": {"type": "string"},
            "line": {"type": "integer"},
        }), "description": "the first 100 skipped programmes and why"},
    })
    refresh = {"type": "integer", "minimum": 300, "maximum": 604800}
    url = {"type": "string", "maxLength": 2000, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
           "description": "http or https only; redirects to other schemes are not followed"}
    programme = _object({
        "id": ID, "channel": ID, "start": TIME, "end": TIME, "title": {"type": "string"},
        "subtitle": text, "description": text,
        "categories": {"type": "array", "items": {"type": "string"}},
        "episode": _nullable({"type": "string", "description": "e.g. `S2 E5`"}),
        "rating": text, "icon": _nullable({"type": "string", "description": "http(s) URL"}),
        "startover": _nullable({"type": "string", "description": (
            "while on air, if its start is inside the channel's DVR window: the start-over"
            " master (from its start, growing)")}),
        "catchup": _nullable({"type": "string", "description": (
            "once ended, while its start is inside the channel's DVR window: the catch-up"
            " master (ENDLIST)")}),
    })
    return {
        "Programme": programme,
        "Guide": _object({
            "from": TIME, "to": TIME,
            "channels": {"type": "array", "items": _object({
                "id": ID, "name": {"type": "string"},
                "number": _nullable({"type": "integer"}),
                "programmes": {"type": "array", "items": _ref("Programme")}})},
        }),
        "NowNext": _object({"channel": ID, "now": _nullable(_ref("Programme")),
                            "next": _nullable(_ref("Programme"))}),
        "GuideImportReport": report,
        "GuideSource": _object({
            "id": ID, "url": {"type": "string"}, "refresh_seconds": {"type": "integer"},
            "next_fetch_at": TIME, "last_fetch_at": _nullable(TIME),
            "last_status": _nullable({"enum": ["ok", "failed"]}),
            "last_error": _nullable(_object({"code": {"type": "string"},
                                             "message": {"type": "string"}})),
            "last_report": _nullable(_ref("GuideImportReport")),
            "created_at": TIME, "updated_at": TIME,
        }),
        "GuideSourcePage": _page_of("GuideSource"),
        "NewGuideSource": _object({"url": url, "refresh_seconds": {
            **refresh, "description": "default 21600 (6 hours)"}}, required=["url"]),
        "GuideSourceChange": _object({"url": url, "refresh_seconds": refresh}, required=[]),
        "ChannelMapping": _object({"xmltv_id": {"type": "string"}, "channel": ID,
                                   "created_at": TIME}),
        "ChannelMappingPage": _page_of("ChannelMapping"),
        "NewChannelMapping": _object({"channel": ID}),
    }


PROFILE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$",
           "description": "the household member's profile, as the box names it"}


def _activity_schemas() -> Json:
    kind = {"enum": ["progress", "stop"],
            "description": "stop: the box stopped playing (its stream slot is freed)"}
    at = {**TIME, "description": "the box's clock, with an offset; at most 5 minutes ahead"
                                 " and 1 day behind the server's"}
    position = {"type": "number", "minimum": 0, "maximum": 604800,
                "description": "seconds into the asset"}
    return {
        "ActivityReport": {"oneOf": [
            _object({"asset": ID, "position": position, "kind": kind, "at": at,
                     "profile": PROFILE}),
            _object({"channel": ID, "kind": kind, "at": at, "profile": PROFILE}),
        ]},
        "ResumePoint": _object({
            "asset": ID, "profile": PROFILE, "position": {"type": "number"},
            "finished": {"type": "boolean", "description": "past 95 % of the duration: off"
                         " the continue-watching row"},
            "at": {**TIME, "description": "the time of the report it comes from"}}),
        # What is kept after the report: a later report already kept wins.
        "ActivityKept": {"oneOf": [
            _ref("ResumePoint"),
            _object({"channel": ID, "profile": PROFILE, "at": TIME}),
        ]},
        "ContinueItem": _object({
            "asset": ID, "title": {"type": "string"},
            "position": {"type": "number", "description": "where to resume, seconds"},
            "duration": _nullable({"type": "number"}), "at": TIME}),
        "ContinuePage": _page_of("ContinueItem"),
        "RecentChannel": _object({"channel": ID, "name": {"type": "string"},
                                  "number": _nullable({"type": "integer"}), "at": TIME}),
        "RecentChannelPage": _page_of("RecentChannel"),
    }


# What POST and PATCH /v1/channels take (stb_origin.live.channel_body checks the same).
LADDER_HEIGHTS = [1080, 720, 540, 432, 360, 234]


def _sync_schemas() -> Json:
    kind = {"enum": ["entitlements", "channel", "guide_day", "title"]}
    item_id = {"type": "string", "maxLength": 64,
               "description": "an account, a channel, or `<channel>/<YYYY-MM-DD>`"}
    return {"SyncPage": _object({
        "reset": {"type": "boolean", "description": "a snapshot starts: once it is complete,"
                  " drop every item it did not send"},
        "phase": {"enum": ["snapshot", "changes"],
                  "description": "`changes`: any snapshot under way is complete"},
        "upserts": {"type": "array", "items": _object({
            "kind": kind, "id": item_id, "data": {"type": "object"}})},
        "deletes": {"type": "array", "items": _object({"kind": kind, "id": item_id}),
                    "description": "a deleted channel takes its guide days with it"},
        "cursor": {"type": "string", "description": "pass it back as it is"},
        "more": {"type": "boolean", "description": "ask again at once"},
    })}


def _sync() -> Json:
    return {"/v1/sync": {"get": _api(
        "A box's offline copy: a snapshot without a cursor, then what changed", (
            "playback", "account"), tags=["sync"], errors=(400,),
        description="Entitlements, channels and the guide by channel and UTC day (from"
                    " yesterday on), in pages. Answers gzip when asked (`Accept-Encoding`).",
        parameters=[_query("cursor", "the `cursor` of the last page; none: a full snapshot",
                           {"type": "string", "maxLength": 512}),
                    _query("limit", "about how many items a page holds",
                           {"type": "integer", "minimum": 1, "maximum": 2000,
                            "default": 500})],
        ok={"200": _answer("one page", _ref("SyncPage"), headers=NO_STORE)})}}


def _graph_schemas() -> Json:
    error = _object({
        "message": {"type": "string"},
        "locations": {"type": "array", "items": _object({"line": {"type": "integer"},
                                                         "column": {"type": "integer"}})},
        "path": {"type": "array", "items": {"type": ["string", "integer"]}},
        "extensions": {"type": "object"},
    }, required=["message"])
    return {
        "GraphQLRequest": _object({
            "query": {"type": "string"},
            "variables": _nullable({"type": "object"}),
            "operationName": _nullable({"type": "string"}),
            "extensions": _nullable({"type": "object"}),
        }, required=["query"]),
        "GraphQLResponse": _object({
            "data": _nullable({"type": "object"}),
            "errors": {"type": "array", "items": error},
        }, required=["data"]),
    }


def _graph() -> Json:
    return {"/graphql": {"post": _api(
        "A GraphQL query: channels with their guide and now/next, the caller's entitlements",
        ("playback", "account", "assets:read", "admin"), tags=["graphql"], errors=(413, 415),
        description="Queries only. Refused before they run, with the limit named: depth over"
                    " 10, over 2,000 tokens or 20 aliases, a cost over 10,000 objects (a"
                    " list counts as many as its `first`). Introspection only where"
                    " STB_GRAPHQL_INTROSPECTION is on.",
        body=_json_body("GraphQLRequest"),
        ok={"200": _answer("the query ran (errors of fields beside the data)",
                           _ref("GraphQLResponse"), headers=NO_STORE),
            "400": _answer("refused: not JSON, not a query, or past a limit",
                           {"oneOf": [_ref("Error"), _ref("GraphQLResponse")]})})}}


def _channel_schemas() -> Json:
    ladder = {"oneOf": [
        {"enum": ["auto", "passthrough"]},
        {"type": "array", "minItems": 1, "maxItems": len(LADDER_HEIGHTS),
         "items": {"enum": LADDER_HEIGHTS}}],
        "description": "`auto`: rungs from a probe of the source (up to three, none taller);"
                       " `passthrough`: the source repackaged as it is; or rung heights,"
                       " tallest first"}
    source = {"type": "string", "minLength": 1, "maxLength": 2000, "description": (
        "udp://host:port, rtp://host:port (MPEG-TS, unicast or multicast), srt://host:port"
        " (?mode=caller|listener|rendezvous, passphrase, latency...), rtmp:// or rtmps://"
        " (pulled from a server), rtmp://address:port/app/streamkey?mode=listener (an"
        " encoder publishes to us; the stream key is checked), http(s):// to an HLS playlist"
        " (.m3u8). A listener's host is the local IP address it binds and its port is the"
        " channel's alone. Nothing else: file:, concat:, subfile:, pipe:, data:, hls+...,"
        " tcp:, rtmps listeners are refused")}
    fields = {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "number": {**_nullable({"type": "integer", "minimum": 1, "maximum": 99999}),
                   "description": "unique; null: none"},
        "sources": {"type": "array", "minItems": 1, "maxItems": 8, "items": source,
                    "description": "the primary first, then the backups in the order they"
                                   " are tried"},
        "ladder": ladder,
        "segment_seconds": {"type": "number", "minimum": 1, "maximum": 10,
                            "description": "default 2"},
        "dvr_window_seconds": {"type": "integer", "minimum": 0, "maximum": 604800,
                               "description": "how far back start-over and catch-up reach;"
                                              " default 14400 (4 hours)"},
        "key_rotation_seconds": {"type": "integer", "anyOf": [
            {"const": 0}, {"minimum": 60, "maximum": 86400}],
            "description": "a new content key every period; 0: one key (per encoder run);"
                           " default 600"},
        "failover_after_seconds": {"type": "number", "minimum": 2, "maximum": 60,
                                   "description": "a source silent this long is switched"
                                                  " from; default 6"},
        "packages": {"type": "array", "maxItems": 100, "items": {"type": "string"},
                     "description": "the packages that hold the channel (they entitle it);"
                                    " on a change, exactly these"},
    }
    return {
        "Channel": _object({
            "id": ID, "name": {"type": "string"}, "number": _nullable({"type": "integer"}),
            "sources": {"type": "array", "items": {"type": "string"}},
            "ladder": {"oneOf": [{"type": "string"},
                                 {"type": "array", "items": {"type": "integer"}}]},
            "segment_seconds": {"type": "number"}, "dvr_window_seconds": {"type": "integer"},
            "key_rotation_seconds": {"type": "integer"},
            "failover_after_seconds": {"type": "number"},
            "revision": {"type": "integer", "description": "moves on every change a runner"
                         " acts on: it restarts the channel's encoder"},
            "status": {"enum": ["starting", "live", "no_signal", "failed"],
                       "description": "no_signal: every source is gone, the slate is on air"},
            "active_source": _nullable({"type": "integer", "description": (
                "index in sources of what is on air; null: the slate, or not started")}),
            "input_bitrate": _nullable({"type": "integer",
                                        "description": "bits per second, last segment"}),
            "last_segment_at": _nullable(TIME),
            "error": _nullable({"type": "string", "description": "what is wrong, in words"}),
            "created_at": TIME, "updated_at": TIME,
            "packages": {"type": "array", "items": {"type": "string"}},
            "playback": _object({"hls": {"type": "string",
                                         "description": "the live master playlist"}}),
        }),
        "ChannelPage": _page_of("Channel"),
        "NewChannel": _object(fields, required=["name", "sources"]),
        "ChannelChange": _object(fields, required=[]),
    }


def _responses() -> Json:
    challenge = {"WWW-Authenticate": _header("the bearer challenge")}
    retry = {"Retry-After": _header("seconds", schema={"type": "string",
                                                       "pattern": "^[0-9]+$"})}
    return {
        "BadRequest": _error("the request is malformed; the message says how"),
        "Unauthorized": _error("no valid token (missing, expired, revoked, unknown user)",
                               challenge),
        "Forbidden": _error("the token lacks the scope, or the caller the right"),
        "NotFound": _error("no such resource"),
        "Conflict": _error("it exists already, or the account is at its device limit"),
        "TooLarge": _error("the body is too large"),
        "UnsupportedMediaType": _error("the body is not of the media type this takes"),
        "Unavailable": _error("a dependency is down (database, storage, Redis); retry."
                              " `storage_unavailable`: storage cannot be reached", retry),
        "InsufficientStorage": _error("`insufficient_storage`: the server is out of storage"
                                      " space; nothing was stored, try again later"),
        "OAuthBadRequest": _oauth_error("RFC 6749 §5.2 / RFC 8628 §3.5"),
        "OAuthUnauthorized": _oauth_error(
            "client authentication by HTTP Basic failed",
            {"WWW-Authenticate": _header("the Basic challenge")}),
        "OAuthTooManyAttempts": _oauth_error("too many client-secret attempts", retry),
    }


def _security_schemes() -> Json:
    scopes = {scope: SCOPE_DESCRIPTIONS[scope] for scope in sorted(SCOPES)}
    return {
        "oauth2": {
            "type": "oauth2",
            "description": "Boxes sign in with the device authorization grant (RFC 8628,"
                           " `x-deviceAuthorization`); services use client credentials.",
            "flows": {
                "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": scopes},
                # OpenAPI 3.1 has no device flow; 3.2 names it deviceAuthorization.
                "x-deviceAuthorization": {"deviceAuthorizationUrl": "/oauth/device_authorization",
                                          "tokenUrl": "/oauth/token", "refreshUrl": "/oauth/token",
                                          "scopes": scopes},
            },
        },
        "bearerToken": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An ES256 access token (RFC 9068 `at+jwt`), from /oauth/token or"
                           " `stb-origin token --scope ...`; the listed names are its scopes.",
        },
        "playbackQueryToken": {
            "type": "apiKey", "in": "query", "name": "token",
            "description": "the access token as `?token=`, for players that cannot set headers",
        },
        "consoleSession": {
            "type": "apiKey", "in": "cookie", "name": "stb_console",
            "description": "the console's session cookie (`__Host-stb_console` on HTTPS),"
                           " set by GET /console and renewed at sign-in",
        },
        "metricsToken": {
            "type": "http", "scheme": "bearer",
            "description": "STB_METRICS_TOKEN; unset, only loopback clients are answered",
        },
        "clientBasic": {
            "type": "http", "scheme": "basic",
            "description": "a confidential client's id and secret (client_secret_basic)",
        },
        "originSecret": {
            "type": "apiKey", "in": "header", "name": "X-Origin-Secret",
            "description": "required when STB_ORIGIN_SECRETS is set: the CDN sends it",
        },
    }


# --- paths --------------------------------------------------------------------------


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "draft-ietf-httpapi-idempotency-key-header: a retry with the same key and"
                   " the same upload (file bytes, file name, title, packages) from the same"
                   " user gets the first 202 again, kept 24 hours, and makes no second asset."
                   " 1 to 255 printable ASCII characters, bare or as a quoted string.",
    "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,253}[!-~])?$"},
}


def _upload() -> Json:
    operation = _api(
        "Upload a master", ("assets:write",), tags=["assets"], errors=(400, 413, 415, 507),
        parameters=[IDEMPOTENCY_KEY],
        body={"required": True, "content": {"multipart/form-data": {"schema": _ref("Upload")}}},
        description="Streams the file to storage, enqueues the pipeline, answers at"
                    " once; follow `status` and `progress` on the asset.",
        ok={"202": _answer("accepted; the pipeline runs (or, for a repeated Idempotency-Key,"
                           " the first answer again)", _ref("Asset"), headers=LOCATION)})
    operation["responses"] = dict(sorted({
        **operation["responses"],
        "409": _error("`idempotency_key_in_flight`: an upload with this Idempotency-Key is"
                      " still in progress; retry once it has finished"),
        "422": _error("`idempotency_key_reused`: this Idempotency-Key was used for another"
                      " upload in the last 24 hours"),
    }.items()))
    return operation


def _assets() -> Json:
    tags = ["assets"]
    asset_id = _path_param("asset_id", "the asset's id", ID)
    return {
        "/v1/assets": {
            "post": _upload(),
            "get": _api("List assets, newest first", ("assets:read",), tags=tags,
                        errors=(400,), parameters=_page_params(),
                        ok={"200": _answer("a page", _ref("AssetPage"), headers=NO_STORE)}),
        },
        "/v1/assets/{asset_id}": {
            "parameters": [asset_id],
            "get": _api("An asset", ("assets:read",), tags=tags, errors=(404,),
                        ok={"200": _answer("the asset", _ref("Asset"), headers=NO_STORE)}),
            "delete": _api("Delete an asset: its stream, source, sidecar tracks and keys",
                           ("assets:write",), tags=tags, errors=(404,),
                           ok={"204": _answer("deleted")}),
        },
        "/v1/assets/{asset_id}/retry": {
            "parameters": [asset_id],
            "post": _api("Give a failed asset a fresh round of attempts (after its cause was"
                         " fixed); 409 unless it is failed", ("assets:write",), tags=tags,
                         errors=(404, 409),
                         ok={"202": _answer("queued again", _ref("Asset"),
                                            headers=NO_STORE)}),
        },
        "/v1/assets/{asset_id}/tracks": {
            "parameters": [asset_id],
            "post": _add_track(),
            "get": _api("The asset's sidecar tracks, oldest first", ("assets:read",), tags=tags,
                        errors=(404,),
                        ok={"200": _answer("its tracks", _ref("TrackList"), headers=NO_STORE)}),
        },
        "/v1/channels/{channel_id}/clips": {
            "parameters": [_path_param("channel_id", "the channel's id", ID)],
            "post": _api(
                "Make an asset of a window of a channel's DVR (live-to-VOD)",
                ("assets:write",), tags=tags, errors=(404, *_JSON_BODY_ERRORS),
                body=_json_body("ClipRequest"),
                description="Cut on segment boundaries and made without re-encoding by"
                            " a worker, like an upload's run: follow it at"
                            " /v1/assets/{id}. It joins the channel's packages and"
                            " outlives the DVR window. 400 when the window is not"
                            " retained (older than the DVR window), ends in the future"
                            " or lasts over 12 hours.",
                ok={"202": _answer("queued", _ref("ClipAsset"),
                                   headers={**NO_STORE, **LOCATION})}),
        },
        "/v1/assets/{asset_id}/tracks/{track_id}": {
            "parameters": [asset_id, _path_param("track_id", "the track's id", ID)],
            "delete": _api("Remove a sidecar track; the asset is republished without it",
                           ("assets:write",), tags=tags, errors=(404,),
                           ok={"204": _answer("removed")}),
        },
    }


TRACK_TYPES = {
    "audio/wav": "WAV", "audio/aac": "AAC in ADTS", "audio/mp4": "AAC in MP4 (.m4a)",
    "text/vtt": "WebVTT", "application/x-subrip": "SubRip (SRT), stored as WebVTT",
}


def _add_track() -> Json:
    kind = {"name": "kind", "in": "query", "required": True, "description": "what the file is",
            "schema": {"type": "string", "enum": ["audio", "subtitles"]}}
    operation = _api(
        "Add a sidecar audio or subtitle track", ("assets:write",), tags=["assets"],
        errors=(400, 404, 409, 413, 415, 507),
        parameters=[
            {**IDEMPOTENCY_KEY, "description": "as for POST /v1/assets: a retry with the same"
             " key, the same file and the same query from the same user gets the first 201"
             " again and adds no second track"},
            kind,
            _query("language", "BCP-47 tag, e.g. `de`, `pt-BR`; ISO 639-2 codes are"
                   " taken too (`ger` becomes `de`)", {"type": "string", "maxLength": 35}),
            _query("name", "what a player's menu shows (cleaned: no quotes, no line breaks,"
                   " at most 64 characters); default: the language's name",
                   {"type": "string", "maxLength": 200}),
            _query("forced", "subtitles only: forced narrative (shown without being chosen)",
                   {"type": "string", "enum": ["true", "false"]}),
        ],
        body={"required": True, "description": "the file itself, streamed; audio: one audio"
              " stream, no video; subtitles: at most 4 MiB",
              "content": {media_type: {"schema": {"type": "string", "format": "binary",
                                                  "description": what}}
                          for media_type, what in TRACK_TYPES.items()}},
        description="Stores the checked file beside the master and puts the asset through"
                    " the pipeline again: a ready asset keeps playing its current version"
                    " until the new one is published; a run in progress is superseded by"
                    " one that includes the track. Audio becomes one more AUDIO rendition,"
                    " subtitles one more SUBTITLES rendition.",
        ok={"201": _answer("added; the asset is queued again", _ref("Track"),
                           headers=NO_STORE)})
    operation["responses"] = dict(sorted({
        **operation["responses"],
        "409": _error("`too_many_tracks`: the asset has as many sidecar tracks as it may;"
                      " `idempotency_key_in_flight`: an upload with this Idempotency-Key is"
                      " still in progress"),
        "422": _error("the file is not what it says: `invalid_subtitles` (the message names"
                      " the line that is wrong), `video_in_audio_track`,"
                      " `not_one_audio_stream`, `no_duration`, `invalid_media`;"
                      " `idempotency_key_reused`: the key was used for another upload"),
    }.items()))
    return operation


def _origin() -> Json:
    media: Json = {media_type: {"schema": {}} for media_type in (
        "application/vnd.apple.mpegurl", "video/iso.segment", "video/mp4", "video/mp2t",
        "audio/aac", "text/vtt")}
    cache = _header("playlists briefly, versioned media for a year")
    object_headers = {"ETag": _header("the object's entity tag"),
                      "Last-Modified": _header("when it was published"),
                      "Cache-Control": cache,
                      "Accept-Ranges": _header("bytes")}
    cors = {"Access-Control-Allow-Origin": _header("*")}

    def answers(with_body: bool) -> Json:
        content = {"content": media} if with_body else {}
        return {
            "200": {"description": "the object", "headers": {**object_headers, **cors},
                    **content},
            "206": {"description": "one byte range of it",
                    "headers": {**object_headers, **cors,
                                "Content-Range": _header("bytes first-last/size")},
                    **content},
            "301": {"description": "another spelling of a filtered master: one URL per form",
                    "headers": {"Location": _header("the canonical name, relative")}},
            "304": {"description": "not modified", "headers": {"ETag": object_headers["ETag"]}},
            "403": _error("not the CDN (X-Origin-Secret), or a bad or expired signed URL"),
            "404": _error("no such file (cached briefly)"),
            "412": _error("If-Match / If-Unmodified-Since failed"),
            "416": _error("range not satisfiable",
                          {"Content-Range": _header("bytes */size")}),
            "503": _response("Unavailable"),
        }

    conditional = [
        {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        for name in ("Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match",
                     "If-Unmodified-Since")]
    preflight = {"204": {"description": "CORS preflight: any origin may read /hls",
                         "headers": {"Access-Control-Allow-Methods": _header("allowed")}},
                 # a control character in the path matches no route at all
                 "404": _error("no such path")}
    security: list[Json] = [{}, {"originSecret": []}]

    def item(summary: str, params: list[Json]) -> Json:
        tags = ["origin"]
        return {
            "parameters": params,
            "get": _operation(summary, answers(True), security=security, tags=tags,
                              parameters=conditional),
            "head": _operation(summary + " (headers only)", answers(False), security=security,
                               tags=tags, parameters=conditional),
            "options": _operation("CORS preflight", preflight, tags=tags),
        }

    asset_id = _path_param("asset_id", "the asset's id", ID)
    path = _path_param("path", "the file under the asset: `master.m3u8`, a filtered master"
                               " such as `master.h720.m3u8`, or `{version}/{rendition}/{file}`")
    token = _path_param("token", "`exp=<unix>~acl=<asset>~hmac=<sha256 hex>`")
    return {
        "/hls/{asset_id}/{path}": item("HLS playlists and segments", [asset_id, path]),
        "/hls/st={token}/{asset_id}/{path}": item("The same, under a signed-URL segment",
                                                  [token, asset_id, path]),
    }


def _keys_and_playback() -> Json:
    private = {"Cache-Control": _header("private, no-store")}
    security = [*_bearer("playback"), {"playbackQueryToken": ["playback"]}]
    refused = _error("insufficient scope, or a refusal: wrong_asset, not_a_user,"
                     " unknown_user, device_revoked, no_device, not_entitled")
    preflight = _operation("CORS preflight for the web players of STB_CORS_ORIGINS",
                           {"204": _answer("preflight", headers={"Vary": _header("Origin")})},
                           tags=["playback"])
    asset_id = _path_param("asset_id", "the asset's id")
    return {
        "/keys/{asset_id}/{key_id}": {
            "parameters": [asset_id, _path_param("key_id", "the key id from the playlist")],
            "get": _operation(
                "The 16-byte AES-128 key, for an entitled box", tags=["playback"],
                security=security,
                description="Every answer after the token check is written to the key audit.",
                responses={
                    "200": _answer("the key", {"type": "string", "minLength": 16,
                                               "maxLength": 16},
                                   headers=private, media_type="application/octet-stream"),
                    "401": _response("Unauthorized"),
                    "403": _error("insufficient scope, or a refusal: wrong_asset, not_a_user,"
                                  " unknown_user, device_revoked, no_device, not_entitled,"
                                  " too_many_streams (the account already plays on"
                                  " STB_MAX_STREAMS_PER_ACCOUNT other boxes; the message"
                                  " names the limit)"),
                    "404": _error("no such key"),
                    "429": _error("too many key requests for this device",
                                  {"Retry-After": _header("seconds")}),
                    "503": _response("Unavailable"),
                }),
            "options": preflight,
        },
        "/v1/playback/{asset_id}": {
            "parameters": [asset_id],
            "get": _operation(
                "Where this box plays the asset from: its filtered (and signed) master",
                tags=["playback"], security=_bearer("playback"),
                responses={
                    "200": _answer("the manifest URL", _ref("Playback"), headers=private),
                    "401": _response("Unauthorized"),
                    "403": refused,
                    "404": _error("no such asset, or not published"),
                    "409": _error("no variant suits the device's capabilities"),
                    "503": _response("Unavailable"),
                }),
            "options": preflight,
        },
        "/v1/key-audit": {
            "get": _api("Key deliveries and refusals, newest first", ("admin",),
                        tags=["playback"], errors=(400,),
                        parameters=[*_page_params(),
                                    _query("asset", "only this asset", ID),
                                    _query("device", "only this device")],
                        ok={"200": _answer("a page", _ref("KeyAuditPage"), headers=NO_STORE)}),
        },
    }


def _accounts() -> Json:
    admin, own = ("admin",), ("admin", "account")

    def created(schema: str, location: bool = True) -> Json:
        return _answer("created", _ref(schema), headers={**NO_STORE, **(LOCATION
                                                                         if location else {})})

    def found(schema: str) -> Json:
        return {"200": _answer("found", _ref(schema), headers=NO_STORE)}

    def listing(schema: str) -> Json:
        return {"200": _answer("a page", _ref(schema), headers=NO_STORE)}

    account = _query("account", "only this account (admins); one's own otherwise")
    package = _path_param("name", "the package's name")
    return {
        "/v1/users": {
            "post": _api("Create a user", admin, tags=["users"],
                         errors=(*_JSON_BODY_ERRORS, 404, 409), body=_json_body("NewUser"),
                         ok={"201": created("User")}),
            "get": _api("List users", admin, tags=["users"], errors=(400,),
                        parameters=[*_page_params(), account], ok=listing("UserPage")),
        },
        "/v1/users/{user_id}": {
            "parameters": [_path_param("user_id", "the user's id")],
            "get": _api("A user", own, tags=["users"], errors=(404,), ok=found("User")),
        },
        "/v1/devices": {
            "post": _api("Register a device (the same serial again: the same device)", own,
                         tags=["devices"], errors=(*_JSON_BODY_ERRORS, 404, 409),
                         body=_json_body("NewDevice"),
                         ok={"200": _answer("already registered", _ref("Device"),
                                            headers={**NO_STORE, **LOCATION}),
                             "201": created("Device")}),
            "get": _api("List devices", own, tags=["devices"], errors=(400,),
                        parameters=[*_page_params(), account], ok=listing("DevicePage")),
        },
        "/v1/devices/{device_id}": {
            "parameters": [_path_param("device_id", "the device's id")],
            "get": _api("A device", own, tags=["devices"], errors=(404,), ok=found("Device")),
        },
        "/v1/devices/{device_id}/revoke": {
            "parameters": [_path_param("device_id", "the device's id")],
            "post": _api("Revoke a device: its tokens stop at once", own, tags=["devices"],
                         errors=(404,), ok=found("Device")),
        },
        "/v1/packages": {
            "post": _api("Create a package", admin, tags=["packages"],
                         errors=(*_JSON_BODY_ERRORS, 409), body=_json_body("NewPackage"),
                         ok={"201": created("Package")}),
            "get": _api("List packages by name", admin, tags=["packages"], errors=(400,),
                        parameters=_page_params(), ok=listing("PackagePage")),
        },
        "/v1/packages/{name}": {
            "parameters": [package],
            "get": _api("A package", admin, tags=["packages"], errors=(404,),
                        ok=found("Package")),
        },
        "/v1/packages/{name}/assets": {
            "parameters": [package],
            "post": _api("Put an asset in the package", admin, tags=["packages"],
                         errors=(*_JSON_BODY_ERRORS, 404, 409),
                         body=_json_body("NewPackageAsset"),
                         ok={"200": _answer("already there", _ref("PackageAsset"),
                                            headers=NO_STORE),
                             "201": created("PackageAsset", location=False)}),
            "get": _api("The package's assets", admin, tags=["packages"], errors=(400, 404),
                        parameters=_page_params(), ok=listing("PackageAssetPage")),
        },
        "/v1/packages/{name}/assets/{asset_id}": {
            "parameters": [package, _path_param("asset_id", "the asset's id")],
            "delete": _api("Take an asset out of the package", admin, tags=["packages"],
                           errors=(404,), ok={"204": _answer("removed", headers=NO_STORE)}),
        },
        "/v1/entitlements": {
            "post": _api("Entitle an account to a package for a time window", admin,
                         tags=["entitlements"], errors=(*_JSON_BODY_ERRORS, 404),
                         body=_json_body("NewEntitlement"), ok={"201": created("Entitlement")}),
            "get": _api("List entitlements", own, tags=["entitlements"], errors=(400,),
                        parameters=[*_page_params(), account], ok=listing("EntitlementPage")),
        },
        "/v1/entitlements/{entitlement_id}": {
            "parameters": [_path_param("entitlement_id", "the entitlement's id")],
            "get": _api("An entitlement", own, tags=["entitlements"], errors=(404,),
                        ok=found("Entitlement")),
        },
        "/v1/entitlements/{entitlement_id}/revoke": {
            "parameters": [_path_param("entitlement_id", "the entitlement's id")],
            "post": _api("End an entitlement now: keys stop at once on every process, boxes"
                         " hear it at their next sync", admin, tags=["entitlements"],
                         errors=(404,), ok=found("Entitlement")),
        },
    }


def _oauth() -> Json:
    tags = ["oauth"]
    no_store = {"Cache-Control": _header("no-store")}
    client_auth: list[Json] = [{}, {"clientBasic": []}]

    def form(schema: str) -> Json:
        return {"required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": _ref(schema)}}}

    def refusals() -> Json:
        return {"400": _response("OAuthBadRequest"), "401": _response("OAuthUnauthorized"),
                "429": _response("OAuthTooManyAttempts")}

    html = {"text/html": {"schema": {"type": "string"}}}

    def page(description: str) -> Json:
        return {"description": description, "content": html}

    return {
        "/oauth/device_authorization": {
            "post": _operation(
                "RFC 8628 §3.1: codes for a box and its owner", tags=tags,
                security=client_auth, body=form("DeviceAuthorizationRequest"),
                responses={"200": _answer("the codes", _ref("DeviceAuthorization"),
                                          headers=no_store), **refusals()}),
        },
        "/oauth/token": {
            "post": _operation(
                "Tokens: device code, refresh token (rotated) or client credentials",
                tags=tags, security=client_auth, body=form("TokenRequest"),
                responses={"200": _answer("tokens", _ref("Tokens"), headers=no_store),
                           **refusals()}),
        },
        "/oauth/revoke": {
            "post": _operation(
                "RFC 7009: revoke a refresh token (its whole sign-in) or an access token",
                tags=tags, security=client_auth, body=form("RevocationRequest"),
                responses={"200": {"description": "revoked, or unknown: the same answer",
                                   "headers": no_store}, **refusals()}),
        },
        "/.well-known/oauth-authorization-server": {
            "get": _operation("RFC 8414 authorization server metadata", tags=tags,
                              responses={"200": _answer("metadata", _ref("ServerMetadata"))}),
        },
        "/.well-known/jwks.json": {
            "get": _operation("The public keys that verify tokens", tags=tags,
                              responses={"200": _answer("the key set", _ref("JWKS"), headers={
                                  "Cache-Control": _header("public, max-age=300")})}),
        },
        "/device": {
            "get": _operation(
                "The verification page: sign in, then enter the box's code", tags=tags,
                parameters=[_query("user_code", "fills the code in (verification_uri_complete)")],
                responses={"200": page("the sign-in or code page")}),
            "post": _operation(
                "The page's forms (sign in, enter a code, approve or deny, sign out)",
                tags=tags, body=form("DevicePageForm"),
                description="Needs the session cookie the GET set, and its CSRF token.",
                responses={
                    "200": page("the next step"),
                    "303": {"description": "signed in or out: back to the page",
                            "headers": {"Location": _header("/device")}},
                    "400": page("a wrong code, password or form"),
                    "403": page("an expired form, a missing session or CSRF token, or an"
                                " account that cannot grant what the box asks"),
                    "410": page("the code expired or was answered already"),
                    "429": {**page("too many attempts"),
                            "headers": {"Retry-After": _header("seconds")}},
                }),
        },
    }


def _channels() -> Json:
    tags, admin = ["channels"], ("admin",)
    channel_id = _path_param("channel_id", "the channel's id", ID)

    def found(status: str = "200", description: str = "found") -> Json:
        return {status: _answer(description, _ref("Channel"), headers=NO_STORE)}

    return {
        "/v1/channels": {
            "post": _api("Create a live channel", admin, tags=tags,
                         errors=(*_JSON_BODY_ERRORS, 409), body=_json_body("NewChannel"),
                         description="A runner picks it up within a second or two. 400 names"
                                     " the field and the rule (a source URL is never repeated"
                                     " back); 409: the number is taken, or another channel"
                                     " listens on a listener source's port (named).",
                         ok={"201": _answer("created", _ref("Channel"),
                                            headers={**NO_STORE, **LOCATION})}),
            "get": _api("List channels by number (those without one last), then id", admin,
                        tags=tags, errors=(400,), parameters=_page_params(),
                        ok={"200": _answer("a page", _ref("ChannelPage"), headers=NO_STORE)}),
        },
        "/v1/channels/{channel_id}": {
            "parameters": [channel_id],
            "get": _api("A channel, its status and its playback URL", admin, tags=tags,
                        errors=(404,), ok=found()),
            "patch": _api("Change a channel", admin, tags=tags,
                          errors=(*_JSON_BODY_ERRORS, 404, 409),
                          body=_json_body("ChannelChange"),
                          description="A change of sources, ladder, durations, DVR window or"
                                      " key rotation moves `revision` on: the runner restarts"
                                      " the encoder (a discontinuity). Name, number and"
                                      " packages change without a restart. 409 as for a"
                                      " creation.",
                          ok=found(description="changed")),
            "delete": _api("Delete a channel: it stops, its segments, keys, package links"
                           " and guide data go", admin, tags=tags, errors=(404,),
                           ok={"204": _answer("deleted", headers=NO_STORE)}),
        },
    }


def _guide() -> Json:
    tags = ["guide"]
    admin = ("admin",)
    any_token = tuple(sorted(SCOPES))
    public = {"Cache-Control": _header("public, max-age until the answer next changes (a"
                                       " programme starts or ends, or leaves the DVR window),"
                                       " at most 300"),
              "ETag": _header("the answer's entity tag")}
    not_modified = {"304": _answer("the box has it (If-None-Match)", headers=public)}
    conditional = {"name": "If-None-Match", "in": "header", "required": False,
                   "schema": {"type": "string"}}
    source_id = _path_param("source_id", "the guide source's id", ID)
    xmltv_id = _path_param("xmltv_id", "the XMLTV channel id (`<channel id>`)",
                           {"type": "string", "minLength": 1, "maxLength": 255})

    def found(schema: str, status: str = "200") -> Json:
        return {status: _answer("found", _ref(schema), headers=NO_STORE)}

    def created(schema: str, location: bool) -> Json:
        return {"201": _answer("created", _ref(schema),
                               headers={**NO_STORE, **(LOCATION if location else {})})}

    return {
        "/v1/guide": {"get": _api(
            "Programmes of channels overlapping a window of whole hours", any_token,
            tags=tags, errors=(400,),
            description="`from` is rounded down and `to` up to the hour, so that boxes share"
                        " answers; at most 48 hours. Guide data is not secret: the answer is"
                        " public for the CDN, the same for every token.",
            parameters=[
                _query("from", "Unix seconds or ISO 8601 with an offset; default now"),
                _query("to", "Unix seconds or ISO 8601 with an offset; default from + 3 h"),
                _query("channels", "comma-separated channel ids; default every channel"),
                conditional],
            ok={"200": _answer("the guide", _ref("Guide"), headers=public), **not_modified})},
        "/v1/channels/{channel_id}/now": {
            "parameters": [_path_param("channel_id", "the channel's id", ID)],
            "get": _api("What is on now and next", any_token, tags=tags, errors=(404,),
                        parameters=[conditional],
                        ok={"200": _answer("now and next", _ref("NowNext"), headers=public),
                            **not_modified})},
        "/v1/guide/imports": {"post": _import()},
        "/v1/guide/mappings": {"get": _api(
            "XMLTV channel ids and the channels they feed", admin, tags=tags, errors=(400,),
            parameters=[*_page_params(), _query("channel", "only those of this channel", ID)],
            ok={"200": _answer("a page", _ref("ChannelMappingPage"), headers=NO_STORE)})},
        "/v1/guide/mappings/{xmltv_id}": {
            "parameters": [xmltv_id],
            "put": _api("Map an XMLTV channel id to a channel", admin, tags=tags,
                        errors=(*_JSON_BODY_ERRORS, 404), body=_json_body("NewChannelMapping"),
                        ok={**found("ChannelMapping"), **created("ChannelMapping", False)}),
            "get": _api("One mapping", admin, tags=tags, errors=(404,),
                        ok=found("ChannelMapping")),
            "delete": _api("Remove a mapping (programmes already imported stay)", admin,
                           tags=tags, errors=(404,),
                           ok={"204": _answer("removed", headers=NO_STORE)}),
        },
        "/v1/guide/sources": {
            "post": _api("Add an XMLTV URL, fetched now and then every refresh_seconds",
                         admin, tags=tags, errors=_JSON_BODY_ERRORS,
                         body=_json_body("NewGuideSource"), ok=created("GuideSource", True)),
            "get": _api("Guide sources, newest first", admin, tags=tags, errors=(400,),
                        parameters=_page_params(),
                        ok={"200": _answer("a page", _ref("GuideSourcePage"),
                                           headers=NO_STORE)}),
        },
        "/v1/guide/sources/{source_id}": {
            "parameters": [source_id],
            "get": _api("A guide source and its last fetch", admin, tags=tags, errors=(404,),
                        ok=found("GuideSource")),
            "patch": _api("Change a source's URL (fetched at the next poll) or interval",
                          admin, tags=tags, errors=(*_JSON_BODY_ERRORS, 404),
                          body=_json_body("GuideSourceChange"), ok=found("GuideSource")),
            "delete": _api("Remove a source (programmes already imported stay)", admin,
                           tags=tags, errors=(404,),
                           ok={"204": _answer("removed", headers=NO_STORE)}),
        },
        "/v1/guide/sources/{source_id}/fetch": {
            "parameters": [source_id],
            "post": _api("Fetch and import the source now", admin, tags=tags, errors=(404,),
                         description="A failed fetch or import is an answer too: see"
                                     " `last_status` and `last_error`.",
                         ok=found("GuideSource")),
        },
    }


def _activity() -> Json:
    tags, box = ["activity"], ("playback",)
    profile = {**_query("profile", "whose activity", PROFILE), "required": True}
    listing = [profile, *_page_params()]
    report = _api("Report playback progress (a box's token)", box, tags=tags,
                  errors=(*_JSON_BODY_ERRORS, 404), body=_json_body("ActivityReport"),
                  description="At most one report per box, item and kind every"
                              " STB_ACTIVITY_REPORT_INTERVAL_S; refused (403 not_entitled)"
                              " for content the account is not entitled to.",
                  ok={"200": _answer("kept", _ref("ActivityKept"), headers=NO_STORE)})
    report["responses"] = dict(sorted({
        **report["responses"],
        "429": _error("a report for this item came less than the interval ago",
                      {"Retry-After": _header("seconds")}),
    }.items()))
    return {
        "/v1/activity": {"post": report},
        "/v1/activity/continue": {"get": _api(
            "Continue watching: started, unfinished, ready and entitled, most recent first",
            box, tags=tags, errors=(400,), parameters=listing,
            ok={"200": _answer("a page", _ref("ContinuePage"), headers=NO_STORE)})},
        "/v1/activity/channels": {"get": _api(
            "Recently watched channels, still entitled, most recent first", box, tags=tags,
            errors=(400,), parameters=listing,
            ok={"200": _answer("a page", _ref("RecentChannelPage"), headers=NO_STORE)})},
        "/v1/activity/assets/{asset_id}": {
            "parameters": [_path_param("asset_id", "the asset's id", ID)],
            "get": _api("Where this profile resumes the asset", box, tags=tags,
                        errors=(400, 404), parameters=[profile],
                        ok={"200": _answer("the resume point", _ref("ResumePoint"),
                                           headers=NO_STORE)})},
    }


def _event_schemas() -> Json:
    return {
        "DeviceCommand": _object({"command": {"type": "string", "enum": ["resync", "sign_out"],
                                              "description": "resync: reload the catalog,"
                                              " guide and entitlements; sign_out: forget the"
                                              " tokens (its event connections end)"}}),
        "CommandSent": _object({"device": ID, "command": {"type": "string"},
                                "offset": {"type": "string", "pattern": "^[0-9]+-[0-9]+$",
                                           "description": "the event's offset in the log"}}),
    }


def _events() -> Json:
    retry = {"Retry-After": _header("seconds"), **NO_STORE}
    return {
        "/v1/events": {"get": _api(
            "Real-time events: a WebSocket, or Server-Sent Events", ("playback", "assets:read"),
            tags=["events"], errors=(400,),
            description=(
                "One path, two transports. **WebSocket** (`Upgrade: websocket`): the token"
                " in the `Authorization` header, or offered as the subprotocol"
                " `bearer.<token>` beside `stb-events` (which the server picks), or as a"
                " first message `{\"token\": \"...\"}`; never in the URL. Messages are JSON"
                " objects with a `type`: `subscribed` (topics, offset), `event` (id, topic,"
                " key, data), `resync` (the offset asked for is gone: reload state, continue"
                " from `offset`), `heartbeat`. Refusals close with 4000 + the HTTP status"
                " below and the error as the reason (`code: message`); a client that lets"
                " events pile up unread closes with 4008 (`slow_consumer`), a device signed"
                " out or a token expired or revoked (checked every heartbeat) with 4401, a"
                " server going down with 1001."
                " **SSE** (`Accept: text/event-stream`): the same messages as `event:`"
                " lines named by topic, each with its offset as `id:` (an EventSource comes"
                " back with `Last-Event-ID`), heartbeats as comment lines. Topics by scope:"
                " `assets` (assets:read), `channels` (either), `entitlements` (the box's own"
                " account), `commands` (the box's own device), `catalog`, `guide`"
                " (playback)."),
            parameters=[
                _query("topics", "comma-separated topics, or `topic:key` to follow one"
                       " thing (e.g. `assets:<id>`); at most 16; default every topic the"
                       " token may read", {"type": "string", "maxLength": 2048}),
                _query("after", "the last offset the client saw: what came after it is"
                       " sent first (or `resync`)", {"type": "string"}),
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "description": "as `after`, sent by EventSource on its own",
                 "schema": {"type": "string"}}],
            ok={"200": _answer("the event stream (until the client goes)",
                               {"type": "string"}, media_type="text/event-stream",
                               headers=NO_STORE),
                "406": _error("neither a WebSocket nor `Accept: text/event-stream`"),
                "429": _error("`too_many_connections`: the device or token subject has its"
                              " most event connections open", retry)})},
        "/v1/devices/{device_id}/commands": {
            "parameters": [_path_param("device_id", "the device's id", ID)],
            "post": _api("Send a command to one device's event connections", ("admin",),
                         tags=["events"], errors=(*_JSON_BODY_ERRORS, 404),
                         body=_json_body("DeviceCommand"),
                         ok={"202": _answer("sent", _ref("CommandSent"), headers=NO_STORE)})},
    }


def _import() -> Json:
    operation = _api(
        "Import an XMLTV file", ("admin",), tags=["guide"], errors=(413, 415, 507),
        body={"required": True, "description": "the XMLTV file itself, streamed; at most"
              " 64 MiB", "content": {media_type: {"schema": {"type": "string"}}
                                    for media_type in ("application/xml", "text/xml")}},
        description="All or nothing: the programmes of each mapped channel replace those"
                    " overlapping the span the file brings; skipped programmes are"
                    " reported with their reason, and a file that cannot be read imports"
                    " nothing.",
        ok={"200": _answer("imported", _ref("GuideImportReport"), headers=NO_STORE)})
    operation["responses"] = dict(sorted({
        **operation["responses"],
        "400": _response("BadRequest"),
        "422": _error("`invalid_xml` (not well-formed; the message names the line and"
                      " column), `unsafe_xml` (entity declarations, external entities, an"
                      " external DTD: refused, nothing fetched), `invalid_xmltv` (not"
                      " XMLTV); nothing was imported"),
    }.items()))
    return operation


# --- the catalog (stb_origin.catalog) ---------------------------------------------------

_KINDS = ["movie", "series", "episode"]
_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}


def _catalog_schemas() -> Json:
    rating = _object({"scheme": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9-]{0,15}$",
                                 "description": "MPAA, FSK, BBFC, ..."},
                      "age_limit": {"type": "integer", "minimum": 0, "maximum": 21,
                                    "description": "years"}})
    size = _object({"width": {"type": "integer"}, "height": {"type": "integer"},
                    "url": {"type": "string", "description": "immutable: a new upload is a"
                            " new URL"}})
    fields = {
        "kind": {"enum": _KINDS, "description": "cannot change once made"},
        "name": {"type": "string", "minLength": 1, "maxLength": 500},
        "description": {"type": "string", "maxLength": 5000},
        "series": _nullable({**ID, "description": "an episode's series"}),
        "season": _nullable({"type": "integer", "minimum": 0, "maximum": 9999}),
        "episode": _nullable({"type": "integer", "minimum": 1, "maximum": 99999}),
        "rating": _nullable(rating),
        "available_from": _nullable({**TIME, "description": "with an offset; null: always"}),
        "available_until": _nullable({**TIME, "description": "with an offset; null: open"}),
        "genres": {"type": "array", "maxItems": 20, "items": _SLUG,
                   "description": "genre slugs; replaces the title's genres"},
    }
    return {
        "Title": _object({
            "id": ID, **{k: v for k, v in fields.items() if k != "genres"},
            "kind": {"enum": _KINDS},
            "genres": {"type": "array", "items": {"type": "string"}},
            "artwork": {"type": "object", "additionalProperties": {
                "type": "array", "items": size}, "description": "by kind, widest first"},
            "assets": {"type": "array", "items": _object({"id": ID,
                                                          "role": {"enum": ["main",
                                                                            "trailer"]}}),
                       "description": "for a box: the assets it may play (none for a series)"},
            "revision": {"type": "integer", "minimum": 1,
                         "description": "counts every change a box could see"},
            "created_at": TIME, "updated_at": TIME,
        }),
        "TitlePage": _page_of("Title"),
        "NewTitle": _object(fields, required=["kind", "name"]),
        "TitleChange": _object(fields, required=[]),
        "AssetLink": _object({"role": {"enum": ["main", "trailer"], "description": (
            "main: what plays (a series takes trailers only)")}}),
        "Genre": _object({"slug": {"type": "string"}, "name": {"type": "string"},
                          "created_at": TIME, "updated_at": TIME}),
        "GenrePage": _page_of("Genre"),
        "NewGenre": _object({"name": {"type": "string", "minLength": 1, "maxLength": 100}}),
    }


def _catalog() -> Json:
    tags, read, write = ["catalog"], ("assets:read",), ("assets:write",)
    title_id = _path_param("title_id", "the title's id", ID)
    slug = _path_param("slug", "the genre's slug", _SLUG)
    filters = [_query("kind", "only titles of this kind", {"enum": _KINDS}),
               _query("series", "only the episodes of this series", ID),
               _query("q", "a case-insensitive part of the name",
                      {"type": "string", "maxLength": 200})]
    private = {"Cache-Control": _header("private, max-age=30"),
               "ETag": _header("a strong entity tag of the body"),
               "Vary": _header("Authorization")}
    not_modified = {"304": _answer("the box has it (If-None-Match)", headers=private)}
    conditional = {"name": "If-None-Match", "in": "header", "required": False,
                   "schema": {"type": "string"}}

    def title(status: str = "200", description: str = "the title") -> Json:
        headers = {**NO_STORE, **(LOCATION if status == "201" and description == "made"
                                  else {})}
        return {status: _answer(description, _ref("Title"), headers=headers)}

    return {
        "/v1/catalog/titles": {
            "post": _api("Make a title: a movie, a series or an episode of one", write,
                         tags=tags, errors=(*_JSON_BODY_ERRORS, 404, 409),
                         body=_json_body("NewTitle"), ok=title("201", "made"),
                         description="404: the series does not exist; 409: the series has"
                                     " an episode with this season and number."),
            "get": _api("Titles, newest first (the series filter: its episodes)", read,
                        tags=tags, errors=(400,), parameters=[*_page_params(), *filters],
                        ok={"200": _answer("a page", _ref("TitlePage"), headers=NO_STORE)}),
        },
        "/v1/catalog/titles/{title_id}": {
            "parameters": [title_id],
            "get": _api("A title with every asset link", read, tags=tags, errors=(404,),
                        ok=title()),
            "patch": _api("Change a title: the fields sent; null clears rating and window",
                          write, tags=tags, errors=(*_JSON_BODY_ERRORS, 404, 409),
                          body=_json_body("TitleChange"), ok=title()),
            "delete": _api("Delete a title (a series: its episodes too)", write, tags=tags,
                           errors=(404,), ok={"204": _answer("deleted", headers=NO_STORE)}),
        },
        "/v1/catalog/titles/{title_id}/assets/{asset_id}": {
            "parameters": [title_id, _path_param("asset_id", "the asset's id", ID)],
            "put": _api("Link an asset to the title, or change its role", write, tags=tags,
                        errors=(*_JSON_BODY_ERRORS, 404), body=_json_body("AssetLink"),
                        ok={**title(), **title("201", "linked")}),
            "delete": _api("Unlink an asset (the asset stays)", write, tags=tags,
                           errors=(404,), ok={"204": _answer("unlinked", headers=NO_STORE)}),
        },
        "/v1/catalog/genres": {"get": _api(
            "Genres by slug", (*read, "playback"), tags=tags, errors=(400,),
            parameters=_page_params(),
            ok={"200": _answer("a page", _ref("GenrePage"), headers=NO_STORE)})},
        "/v1/catalog/genres/{slug}": {
            "parameters": [slug],
            "put": _api("Make or rename a genre", write, tags=tags,
                        errors=(*_JSON_BODY_ERRORS, 404), body=_json_body("NewGenre"),
                        ok={s: _answer("the genre", _ref("Genre"), headers=NO_STORE)
                            for s in ("200", "201")}),
            "delete": _api("Delete a genre no title has", write, tags=tags,
                           errors=(404, 409),
                           ok={"204": _answer("deleted", headers=NO_STORE)}),
        },
        "/v1/catalog/titles/{title_id}/artwork/{kind}": {
            "parameters": [title_id, _path_param("kind", "what the image is", {
                "enum": ["poster", "backdrop", "logo", "thumbnail"]})],
            "put": _artwork_upload(),
            "delete": _api("Take the title's artwork of this kind off it", write, tags=tags,
                           errors=(404,), ok={"204": _answer("removed", headers=NO_STORE)}),
        },
        "/art/{title_id}/{name}": _art(),
        "/v1/titles": {"get": _api(
            "What this box may browse: available now, entitled, playable on it", ("playback",),
            tags=tags, errors=(400,),
            description="A series shows when one of its episodes does; with `series`, its"
                        " episodes in season and episode order. 403 `no_device`: a user's"
                        " token not bound to a device.",
            parameters=[*_page_params(), *filters,
                        _query("genre", "only titles of this genre", _SLUG),
                        _query("max_age", "only titles rated for this age or unrated",
                               {"type": "integer", "minimum": 0, "maximum": 21}),
                        conditional],
            ok={"200": _answer("a page", _ref("TitlePage"), headers=private),
                **not_modified})},
        "/v1/titles/{title_id}": {
            "parameters": [title_id],
            "get": _api("A title this box may see, with the assets it may play",
                        ("playback",), tags=tags, errors=(404,), parameters=[conditional],
                        ok={"200": _answer("the title", _ref("Title"), headers=private),
                            **not_modified})},
    }


def _artwork_upload() -> Json:
    image = {"type": "string", "contentMediaType": "application/octet-stream"}
    operation = _api(
        "Upload an image as the title's artwork of this kind", ("assets:write",),
        tags=["catalog"], errors=(400, 404, 413, 415),
        body={"required": True, "description": "the image itself: JPEG or PNG, at most 16 MiB,"
              " 16 to 8192 pixels a side, at most 40 megapixels",
              "content": {"image/jpeg": {"schema": image}, "image/png": {"schema": image}}},
        description="Made into 1920, 960 and 480 pixels wide (never wider than the image),"
                    " in the image's format and without its metadata; the title's `artwork`"
                    " names the new URLs. 415: not a JPEG or PNG (by its first bytes), or not"
                    " the type sent.",
        ok={"200": _answer("the title", _ref("Title"), headers=NO_STORE)})
    operation["responses"] = dict(sorted({
        **operation["responses"],
        "422": _error("`invalid_image`: damaged, truncated, or too large in pixels"),
    }.items()))
    return operation


def _art() -> Json:
    immutable = {"Cache-Control": _header("public, max-age=31536000, immutable"),
                 "ETag": _header("the stored object's entity tag"),
                 "Last-Modified": _header("when it was stored")}
    params = [_path_param("title_id", "the title's id", ID),
              _path_param("name", "`{kind}.{digest}.{width}.{jpg|png}`, as the title names it",
                          {"type": "string", "pattern": "^[a-z]{1,16}\\.[0-9a-f]{32}\\."
                                                        "[1-9][0-9]{0,4}\\.(jpg|png)$"})]
    image = {media_type: {"schema": {"type": "string"}}
             for media_type in ("image/jpeg", "image/png")}
    missing = _error("no such image", {"Cache-Control": _header("public, max-age=10")})

    def answers(partial: bool) -> Json:
        found = {"200": {"description": "the image", "content": image, "headers": immutable},
                 "304": _answer("the client has it", headers=immutable),
                 "404": missing, "503": _response("Unavailable")}
        if partial:
            found["206"] = {"description": "one byte range", "content": image,
                            "headers": immutable}
            found["416"] = _error("the range starts past the end")
        return dict(sorted(found.items()))

    return {
        "parameters": params,
        "get": _operation("A size of a title's artwork: public, cached for ever",
                          answers(True), tags=["catalog"]),
        "head": _operation("The same headers without the image", answers(False),
                           tags=["catalog"]),
    }

# --- resumable uploads (tus 1.0) ---------------------------------------------------


def _tus_header(name: str, description: str, schema: Json, required: bool = True) -> Json:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema}


TUS_RESUMABLE = _tus_header("Tus-Resumable", "the protocol version; any other answers 412",
                            {"type": "string", "enum": ["1.0.0"]})
SIZE = {"type": "string", "pattern": "^[0-9]{1,19}$"}
TUS_ANSWER = {"Tus-Resumable": _header("1.0.0"), **NO_STORE}
UPLOAD_EXPIRES = {"Upload-Expires": _header("an unfinished upload: when it expires if"
                                            " nothing more is sent (RFC 9110 date)", False)}
STB_ASSET = {"Stb-Asset": _header("a finished upload: the id of its asset (/v1/assets/{id})",
                                  False, ID)}
OFFSET = {"Upload-Offset": _header("the bytes the upload holds", schema=SIZE)}


def _tus_errors(*statuses: int) -> Json:
    described = {
        400: "malformed headers: a size, `bad_metadata`, `unsupported_checksum`,"
             " `unknown_package`, `empty_file`",
        404: "no such upload, or another user's",
        409: "`offset_mismatch`: Upload-Offset is not the upload's offset (given in"
             " Upload-Offset); `upload_taken_over`",
        410: "`upload_expired`: its bytes were deleted",
        412: "`unsupported_tus_version`: Tus-Resumable is not 1.0.0",
        413: "`payload_too_large`: Upload-Length over Tus-Max-Size, or a body past"
             " Upload-Length (discarded)",
        415: "the body is not application/offset+octet-stream, or the file's first bytes"
             " are no video container (the upload is deleted)",
        423: "`upload_locked`: another request is writing it; retry",
        429: "`too_many_uploads`: STB_UPLOADS_PER_USER unfinished uploads already",
        460: "`checksum_mismatch`: the body does not match Upload-Checksum; discarded",
        507: "`insufficient_storage`",
    }
    return {str(status): _error(described[status], TUS_ANSWER) for status in statuses}


def _tus_api(summary: str, ok: Json, errors: tuple[int, ...], *,
             parameters: list[Json], body: Json | None = None,
             description: str | None = None) -> Json:
    responses = {**ok, "401": _response("Unauthorized"), "403": _response("Forbidden"),
                 "503": _response("Unavailable"), **_tus_errors(412, *errors)}
    return _operation(summary, dict(sorted(responses.items())), security=_bearer(
        "assets:write"), tags=["uploads"], parameters=[TUS_RESUMABLE, *parameters],
                      body=body, description=description)


def _uploads() -> Json:
    upload_id = _path_param("upload_id", "the upload's id", ID)
    chunk = {"required": False, "content": {"application/offset+octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}
    checksum = _tus_header("Upload-Checksum", "`sha1|sha256|sha512 <base64 digest>` of"
                           " the body", {"type": "string"}, required=False)
    discovery = _operation("tus capabilities (and the CORS preflight's answer)", tags=[
        "uploads"], responses={"204": _answer("Tus-Version, Tus-Extension, Tus-Max-Size,"
                                              " Tus-Checksum-Algorithm", headers={
            "Tus-Version": _header("1.0.0"), "Tus-Extension": _header("the extensions"),
            "Tus-Max-Size": _header("STB_MAX_UPLOAD_BYTES", schema=SIZE),
            "Tus-Checksum-Algorithm": _header("sha1,sha256,sha512")})})
    return {
        "/v1/uploads": {
            "options": discovery,
            "post": _tus_api(
                "Start a resumable upload (tus creation, creation-with-upload)",
                {"201": _answer("created; PATCH bytes to Location", headers={
                    **TUS_ANSWER, **LOCATION, **UPLOAD_EXPIRES, **STB_ASSET,
                    "Upload-Offset": _header("creation-with-upload: the bytes kept",
                                             False, SIZE)})},
                (400, 413, 415, 429, 460, 507),
                parameters=[
                    _tus_header("Upload-Length", "the file's size in bytes", SIZE),
                    _tus_header("Upload-Metadata", "comma-separated `key base64(value)`:"
                                " `filename`, `title`, `packages` (comma-separated"
                                " names); other keys are kept and ignored",
                                {"type": "string"}, required=False),
                    checksum],
                body=chunk,
                description="tus 1.0 (https://tus.io/protocols/resumable-upload). When"
                            " the last byte is in, the upload becomes one asset, as with"
                            " POST /v1/assets; HEAD names it in Stb-Asset. Unfinished"
                            " uploads expire after STB_UPLOAD_EXPIRES_S without a byte."),
        },
        "/v1/uploads/{upload_id}": {
            "parameters": [upload_id],
            "options": discovery,
            "head": _tus_api(
                "Where an upload stands (tus core)",
                {"200": _answer("its offset; once finished, its asset", headers={
                    **TUS_ANSWER, **OFFSET, **UPLOAD_EXPIRES, **STB_ASSET,
                    "Upload-Length": _header("the file's size", schema=SIZE),
                    "Upload-Metadata": _header("as sent at creation", False)})},
                (404, 410), parameters=[]),
            "patch": _tus_api(
                "Append bytes at Upload-Offset (tus core, checksum)",
                {"204": _answer("kept; with the last byte, the asset is made", headers={
                    **TUS_ANSWER, **OFFSET, **UPLOAD_EXPIRES, **STB_ASSET})},
                (400, 404, 409, 410, 413, 415, 423, 460, 507),
                parameters=[_tus_header("Upload-Offset", "where these bytes go: the"
                                        " upload's offset", SIZE), checksum],
                body={**chunk, "required": True},
                description="A body cut short keeps what arrived (without a checksum);"
                            " one request writes an upload at a time."),
            "delete": _tus_api(
                "Terminate an upload: its bytes are deleted (tus termination)",
                {"204": _answer("terminated", headers=TUS_ANSWER)}, (404, 410, 423),
                parameters=[]),
        },
    }


def _console() -> Json:
    tags = ["console"]
    html = {"text/html": {"schema": {"type": "string"}}}
    session: list[Json] = [{"consoleSession": []}]
    form = {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": _object({"csrf_token": {"type": "string"}, "email": {"type": "string"},
                           "password": {"type": "string"}},
                          required=["csrf_token"], closed=False)}}}
    back = {"description": "done: back to /console",
            "headers": {"Location": _header("/console"), **NO_STORE}}

    def page(description: str) -> Json:
        return {"description": description, "content": html, "headers": NO_STORE}

    forbidden = page("the form is out of date, not from this page's session (CSRF token),"
                     " or from another origin")
    token = _object({"access_token": {"type": "string"},
                     "token_type": {"type": "string", "enum": ["Bearer"]},
                     "expires_in": {"type": "integer", "minimum": 1},
                     "scope": SCOPE_LIST,
                     "user": _object({"id": ID, "email": {"type": "string"},
                                      "role": {"type": "string", "enum": ["editor", "admin"]}})})
    return {
        "/console": {"get": _operation(
            "The content team's web app: the sign-in form, or the app once signed in",
            tags=tags, responses={"200": page("the page (sets the session cookie when new)")})},
        "/console/sign-in": {"post": _operation(
            "Sign in to the console (editors and admins): a new session", tags=tags,
            body=form, security=session,
            description="Needs the session cookie and CSRF token of GET /console and an Origin"
                        " of this server; rate-limited per address and per email.",
            responses={"303": back, "400": page("a wrong email or password"),
                       "403": page("not an editor or admin; or an out-of-date form"),
                       "429": {**page("too many attempts"),
                               "headers": {"Retry-After": _header("seconds"), **NO_STORE}}})},
        "/console/sign-out": {"post": _operation(
            "Sign out: the session and the tokens minted for it end now", tags=tags,
            body=form, security=session, responses={"303": back, "403": forbidden})},
        "/console/token": {"post": _operation(
            "A short-lived access token for the console's pages", tags=tags, security=session,
            description="Needs the session cookie, its CSRF token in `X-CSRF-Token` and an"
                        " Origin of this server. Editors get the editor scopes, admins every"
                        " scope; with `{\"asset\": id}` a preview token that fetches that"
                        " asset's keys only.",
            parameters=[{"name": "X-CSRF-Token", "in": "header", "required": True,
                         "description": "the session's CSRF token (the page's meta tag)",
                         "schema": {"type": "string"}}],
            body={"required": False, "content": _json(_object({"asset": ID}, required=[]))},
            responses={"200": _answer("the token", token, headers=NO_STORE),
                       "400": _response("BadRequest"),
                       "401": _error("no session, or signed out"),
                       "403": _error("another origin (`cross_origin`) or a missing or wrong"
                                     " CSRF token (`csrf_failed`)"),
                       "413": _response("TooLarge"),
                       "415": _response("UnsupportedMediaType")})},
        "/console/static/{build}/{path}": {"get": _operation(
            "The console's scripts, stylesheet and vendored libraries, cached for ever",
            tags=tags, parameters=[_path_param("build", "the build id the page names"),
                                   _path_param("path", "the file")],
            responses={"200": {"description": "the file", "content": {"*/*": {"schema": {
                "type": "string"}}}, "headers": {"Cache-Control": _header(
                    "public, max-age=31536000, immutable")}},
                "404": _response("NotFound")})},
    }


# The event types a webhook may ask for (webhooks.event_types, which tests/webhooks
# compares with this list: the shared layer cannot import a domain).
WEBHOOK_EVENT_TYPES = [
    "asset.queued", "asset.processing", "asset.ready", "asset.failed", "asset.deleted",
    "channel.starting", "channel.live", "channel.no_signal", "channel.failed", "title.created",
    "title.updated", "title.deleted", "guide.imported", "entitlement.granted",
    "entitlement.revoked"]


def _webhooks() -> Json:
    tags, admin = ["webhooks"], ("admin",)
    url = {"type": "string", "maxLength": 2048, "description": "https:// (http:// when"
           " STB_WEBHOOKS_ALLOW_HTTP is on); refused when its host resolves to a private,"
           " loopback, link-local or other internal address"}
    events = {"type": "array", "minItems": 1, "maxItems": len(WEBHOOK_EVENT_TYPES),
              "items": {"enum": WEBHOOK_EVENT_TYPES}}
    webhook_fields = {"id": ID, "url": url, "events": events, "active": {"type": "boolean"},
                      "created_at": TIME, "updated_at": TIME}
    webhook = _object(webhook_fields)
    with_secret = _object({**webhook_fields, "secret": {
        "type": "string", "description": "the signing secret: shown only here"}})
    attempt = _object({"number": {"type": "integer"}, "at": TIME,
                       "status_code": _nullable({"type": "integer"}),
                       "error": _nullable({"type": "string"}),
                       "duration_ms": {"type": "integer"}})
    delivery = _object({"id": ID, "event_id": {"type": "string"},
                        "type": {"enum": WEBHOOK_EVENT_TYPES},
                        "state": {"enum": ["pending", "delivered", "failed"]},
                        "attempts": {"type": "array", "items": attempt},
                        "next_attempt_at": _nullable(TIME), "created_at": TIME})

    def page(item: Json) -> Json:
        return _object({"items": {"type": "array", "items": item},
                        "next": _nullable({"type": "string"})})

    def body(required: list[str]) -> Json:
        schema = _object({"url": url, "events": events, "active": {"type": "boolean"}},
                         required)
        return {"required": True, "content": _json(schema)}

    webhook_id = _path_param("webhook_id", "the webhook's id", ID)
    bad_target = ("400 `bad_target`: the URL is malformed, not allowed, or its host"
                  " resolves inside (SSRF).")
    return {
        "/v1/webhooks": {
            "post": _api("Subscribe a URL to events", admin, tags=tags,
                         errors=(*_JSON_BODY_ERRORS, 409), body=body(["url", "events"]),
                         description=bad_target + " 409 `too_many_webhooks`. The answer"
                         " holds the signing secret, shown this once.",
                         ok={"201": _answer("the webhook and its secret", with_secret,
                                            headers={**LOCATION, **NO_STORE})}),
            "get": _api("Webhooks, newest first", admin, tags=tags, errors=(400,),
                        parameters=_page_params(),
                        ok={"200": _answer("a page", page(webhook), headers=NO_STORE)}),
        },
        "/v1/webhooks/{webhook_id}": {
            "parameters": [webhook_id],
            "get": _api("A webhook", admin, tags=tags, errors=(404,),
                        ok={"200": _answer("the webhook", webhook, headers=NO_STORE)}),
            "patch": _api("Change a webhook's URL, events or active flag", admin, tags=tags,
                          errors=(*_JSON_BODY_ERRORS, 404), body=body([]),
                          description=bad_target + " A paused webhook keeps its pending"
                          " deliveries and gets no new ones.",
                          ok={"200": _answer("the webhook", webhook, headers=NO_STORE)}),
            "delete": _api("Delete a webhook with its delivery log", admin, tags=tags,
                           errors=(404,), ok={"204": _answer("deleted", headers=NO_STORE)}),
        },
        "/v1/webhooks/{webhook_id}/secret": {
            "parameters": [webhook_id],
            "post": _api("Replace the signing secret (the old one stops at once)", admin,
                         tags=tags, errors=(404,),
                         ok={"200": _answer("the webhook and its new secret", with_secret,
                                            headers=NO_STORE)}),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "parameters": [webhook_id],
            "get": _api("The delivery log: deliveries newest first, each with its attempts",
                        admin, tags=tags, errors=(400, 404), parameters=_page_params(),
                        ok={"200": _answer("a page", page(delivery), headers=NO_STORE)}),
        },
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {
            "parameters": [webhook_id, _path_param("delivery_id", "the delivery's id", ID)],
            "post": _api("Send a delivery again now, in a new round of attempts", admin,
                         tags=tags, errors=(404,),
                         ok={"202": _answer("the delivery, due now", delivery,
                                            headers=NO_STORE)}),
        },
    }


def _operations() -> Json:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/healthz": {"get": _operation("Alive", tags=["operations"], responses={
            "200": _answer("alive", _ref("Health"), headers=NO_STORE)})},
        "/readyz": {"get": _operation("Redis, storage and the database answer", tags=[
            "operations"], responses={
            "200": _answer("ready", _ref("Readiness"), headers=NO_STORE),
            "503": _answer("not ready: which check failed", _ref("Readiness"),
                           headers=NO_STORE)})},
        "/metrics": {"get": _operation(
            "Prometheus metrics", tags=["operations"],
            security=[{"metricsToken": []}, {}],
            responses={
                "200": {"description": "the exposition format", "content": text,
                        "headers": NO_STORE},
                "401": _error("STB_METRICS_TOKEN is set and was not sent",
                              {"WWW-Authenticate": _header("the bearer challenge")}),
                "403": _error("no token is set and the client is not on loopback"),
            })},
        PATH: {"get": _operation("This document", tags=["operations"], responses={
            "200": _answer("OpenAPI 3.1", {"type": "object"}, headers={
                "Cache-Control": _header(CACHE_CONTROL)})})},
    }


def build_document() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stb-origin",
            "version": "1",
            "description": "The media back end for set-top boxes: ingest, HLS origin, keys,"
                           " playback, accounts and OAuth 2.0. API errors are"
                           " `{\"error\": {\"code\", \"message\"}}`; the OAuth endpoints answer"
                           " in RFC 6749's `{\"error\", \"error_description\"}`.",
        },
        "tags": [{"name": name} for name in (
            "assets", "origin", "playback", "users", "devices", "packages", "entitlements",
            "oauth", "channels", "guide", "sync", "graphql", "activity", "catalog",
            "events", "uploads", "webhooks", "console", "operations")],
        "paths": {**_assets(), **_origin(), **_keys_and_playback(), **_accounts(), **_oauth(),
                  **_channels(), **_guide(), **_sync(), **_graph(), **_activity(),
                  **_catalog(), **_events(), **_uploads(), **_webhooks(), **_console(),
                  **_operations()},
        "components": {"schemas": _schemas(), "responses": _responses(),
                       "securitySchemes": _security_schemes()},
    }


def routes() -> list[Route]:
    body = json.dumps(build_document()).encode()

    async def document(_request: Request) -> Response:
        return Response(body, media_type="application/json",
                        headers={"Cache-Control": CACHE_CONTROL})

    return [Route(PATH, document, methods=["GET"])]
