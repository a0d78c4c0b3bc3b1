"""The guide API: imports, sources and the XMLTV channel mapping for admins; the
guide and now/next for boxes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.errors import InvalidValue, NotFound
from stb_origin.accounts.http import admin_claims, require_admin, run_as_caller
from stb_origin.assets.channels import Channel
from stb_origin.db.paging import newest_first
from stb_origin.db.types import ID, utcnow
from stb_origin.guide import store, view
from stb_origin.guide.fetch import check_url
from stb_origin.guide.imports import MAX_XMLTV_BYTES, import_file
from stb_origin.guide.models import MAX_XMLTV_ID, ChannelMapping, GuideSource
from stb_origin.guide.sources import DEFAULT_REFRESH_S, GuidePoller, check_refresh, new_source
from stb_origin.guide.xmltv import XmltvError
from stb_origin.ingest.leftovers import upload_dir
from stb_origin.ingest.upload import receive_body
from stb_origin.web.bearer import require_scope
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.guide")

XML_TYPES = ("application/xml", "text/xml")
DEFAULT_WINDOW = timedelta(hours=3)
MAX_WINDOW = timedelta(hours=48)
MAX_CHANNELS = 200


# --- imports ----------------------------------------------------------------------

async def create_import(request: Request) -> Response:
    claims = await admin_claims(request)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in XML_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the XMLTV file as the body, as"
                       " application/xml")
    services = services_of(request)
    upload = await receive_body(request, upload_dir(services.settings), MAX_XMLTV_BYTES)
    try:
        report = await anyio.to_thread.run_sync(
            import_file, services, upload.path, utcnow(), f"upload by {claims.subject}")
    except XmltvError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    finally:
        upload.path.unlink(missing_ok=True)
    return json_response(report)


# --- the XMLTV channel mapping -----------------------------------------------------

def _xmltv_id(request: Request) -> str:
    value: str = request.path_params["xmltv_id"]
    if not value.strip() or len(value) > MAX_XMLTV_ID or not value.isprintable():
        raise ApiError(404, "not_found", "no such mapping")
    return value


async def put_mapping(request: Request) -> Response:
    claims = await admin_claims(request)
    xmltv_id = _xmltv_id(request)
    body = await read_object(request, {"channel"})
    channel_id = body.text("channel")

    def work(session: Session, caller: Caller) -> tuple[Json, bool]:
        require_admin(caller)
        if not ID.fullmatch(channel_id) or session.get(Channel, channel_id) is None:
            raise NotFound("no such channel")
        mapping = session.get(ChannelMapping, xmltv_id)
        created = mapping is None
        if mapping is None:
            mapping = ChannelMapping(xmltv_id=xmltv_id, channel_id=channel_id,
                                     created_at=utcnow())
            session.add(mapping)
        mapping.channel_id = channel_id
        session.flush()
        return mapping.to_json(), created

    mapping, created = await run_as_caller(request, claims, work)
    return json_response(mapping, 201 if created else 200)


async def list_mappings(request: Request) -> Response:
    claims = await admin_claims(request)
    limit, after = page_params(request)
    channel = request.query_params.get("channel")
    if channel is not None and not ID.fullmatch(channel):
        raise ApiError(400, "bad_request", "channel: a channel id")
    if after is not None and not after.isprintable():
        raise ApiError(400, "bad_request", "after: an XMLTV id from the previous page")

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        query = select(ChannelMapping).order_by(ChannelMapping.xmltv_id).limit(limit + 1)
        if after is not None:
            query = query.where(ChannelMapping.xmltv_id > after)
        if channel is not None:
            query = query.where(ChannelMapping.channel_id == channel)
        return [m.to_json() for m in session.scalars(query)]

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/guide/mappings", "xmltv_id", {"channel": channel})


async def get_mapping(request: Request) -> Response:
    claims = await admin_claims(request)
    xmltv_id = _xmltv_id(request)

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        mapping = session.get(ChannelMapping, xmltv_id)
        if mapping is None:
            raise NotFound("no such mapping")
        return mapping.to_json()

    return json_response(await run_as_caller(request, claims, work))


async def delete_mapping(request: Request) -> Response:
    claims = await admin_claims(request)
    xmltv_id = _xmltv_id(request)

    def work(session: Session, caller: Caller) -> None:
        require_admin(caller)
        mapping = session.get(ChannelMapping, xmltv_id)
        if mapping is None:
            raise NotFound("no such mapping")
        session.delete(mapping)

    await run_as_caller(request, claims, work)
    return Response(status_code=204, headers=NO_STORE)


# --- sources ------------------------------------------------------------------------

def _checked_url(value: str) -> str:
    try:
        return check_url(value)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None


def _checked_refresh(value: object) -> int:
    try:
        return check_refresh(value)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None


async def create_source(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, {"url", "refresh_seconds"})
    url = body.text("url")
    refresh = body.raw("refresh_seconds")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        source = new_source(_checked_url(url), DEFAULT_REFRESH_S if refresh is None
                            else _checked_refresh(refresh), utcnow())
        session.add(source)
        session.flush()
        return source.to_json()

    source = await run_as_caller(request, claims, work)
    log.info("guide source added", extra={"source_id": source["id"], "url": source["url"],
                                          "subject": claims.subject})
    return json_response(source, 201, f"/v1/guide/sources/{source['id']}")


async def list_sources(request: Request) -> Response:
    claims = await admin_claims(request)
    limit, after = page_params(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        found = newest_first(session, GuideSource, select(GuideSource), limit + 1, after)
        return [s.to_json() for s in found]

    return paged(await run_as_caller(request, claims, work), limit, "/v1/guide/sources", "id")


def _source(session: Session, source_id: str) -> GuideSource:
    source = session.get(GuideSource, source_id)
    if source is None:
        raise NotFound("no such guide source")
    return source


async def get_source(request: Request) -> Response:
    claims = await admin_claims(request)
    source_id = path_id(request, "source_id", "guide source")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        return _source(session, source_id).to_json()

    return json_response(await run_as_caller(request, claims, work))


async def update_source(request: Request) -> Response:
    claims = await admin_claims(request)
    source_id = path_id(request, "source_id", "guide source")
    body = await read_object(request, {"url", "refresh_seconds"})
    url = body.optional_text("url")
    refresh = body.raw("refresh_seconds")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        source = _source(session, source_id)
        now = utcnow()
        if url is not None and url != source.url:
            source.url = _checked_url(url)
            source.next_fetch_at = now  # a new URL is fetched at the next poll
        if refresh is not None:
            source.refresh_s = _checked_refresh(refresh)
            source.next_fetch_at = min(source.next_fetch_at,
                                       now + timedelta(seconds=source.refresh_s))
        source.updated_at = now
        session.flush()
        return source.to_json()

    return json_response(await run_as_caller(request, claims, work))


async def delete_source(request: Request) -> Response:
    claims = await admin_claims(request)
    source_id = path_id(request, "source_id", "guide source")

    def work(session: Session, caller: Caller) -> None:
        require_admin(caller)
        session.delete(_source(session, source_id))

    await run_as_caller(request, claims, work)
    return Response(status_code=204, headers=NO_STORE)


async def fetch_source_now(request: Request) -> Response:
    claims = await admin_claims(request)
    source_id = path_id(request, "source_id", "guide source")

    def work(session: Session, caller: Caller) -> str:
        require_admin(caller)
        return _source(session, source_id).url

    url = await run_as_caller(request, claims, work)
    poller = GuidePoller(services_of(request))
    source = await anyio.to_thread.run_sync(poller.fetch_source, source_id, url, utcnow())
    if source is None:
        raise ApiError(404, "not_found", "no such guide source")
    return json_response(source)


# --- for boxes ----------------------------------------------------------------------

async def _any_token(request: Request) -> None:
    await require_scope(request, services_of(request).signer, *sorted(scopes.ALL))


def _time_param(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    parsed: datetime | None
    try:
        if value.isascii() and value.isdigit():
            # Eleven digits reach past 2200: longer ones are refused unread.
            parsed = datetime.fromtimestamp(int(value), UTC) if len(value) <= 11 else None
        else:
            parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        parsed = None
    if parsed is None or parsed.tzinfo is None or not 1970 <= parsed.year <= 2200:
        raise ApiError(400, "bad_request", f"{name}: Unix seconds or an ISO 8601 time with an"
                       " offset, e.g. 2026-12-07T18:00:00Z, between 1970 and 2200")
    return parsed.astimezone(UTC)


def _channel_ids(request: Request) -> list[str] | None:
    value = request.query_params.get("channels")
    if value is None or value == "":
        return None
    ids = sorted({part.strip() for part in value.split(",") if part.strip()})
    if len(ids) > MAX_CHANNELS or not all(ID.fullmatch(i) for i in ids):
        raise ApiError(400, "bad_request", f"channels: up to {MAX_CHANNELS} channel ids,"
                       " separated by commas")
    return ids


async def get_guide(request: Request) -> Response:
    await _any_token(request)
    now = utcnow()
    start = view.floor_hour(_time_param(request, "from") or now)
    end = view.ceil_hour(_time_param(request, "to") or start + DEFAULT_WINDOW)
    if end <= start:
        raise ApiError(400, "bad_request", "to must be after from")
    if end - start > MAX_WINDOW:
        raise ApiError(400, "bad_request", f"at most {MAX_WINDOW} between from and to")
    requested = _channel_ids(request)

    def work() -> tuple[Json, datetime]:
        with services_of(request).db.session() as session:
            channels = store.channels(session, requested)
            by_id = {c.id: c for c in channels}
            found = store.programmes(session, list(by_id), start, end)
        listed: dict[str, list[Json]] = {c.id: [] for c in channels}
        for programme in found:
            listed[programme.channel_id].append(
                view.programme_json(programme, by_id[programme.channel_id], now))
        body = {"from": start.isoformat(), "to": end.isoformat(), "channels": [
            {"id": c.id, "name": c.name, "number": c.number, "programmes": listed[c.id]}
            for c in channels]}
        until = view.next_change(((p, by_id[p.channel_id]) for p in found), now)
        return body, until

    body, until = await anyio.to_thread.run_sync(work)
    return view.cacheable(request, body, now, until)


async def get_now(request: Request) -> Response:
    await _any_token(request)
    channel_id = path_id(request, "channel_id", "channel")
    now = utcnow()

    def work() -> tuple[Json, datetime] | None:
        with services_of(request).db.session() as session:
            channel = session.get(Channel, channel_id)
            if channel is None:
                return None
            on_air, following = store.now_and_next(session, channel_id, now)
        shown = [p for p in (on_air, following) if p is not None]
        body = {"channel": channel_id,
                "now": view.programme_json(on_air, channel, now) if on_air else None,
                "next": view.programme_json(following, channel, now) if following else None}
        return body, view.next_change(((p, channel) for p in shown), now)

    answer = await anyio.to_thread.run_sync(work)
    if answer is None:
        raise ApiError(404, "not_found", "no such channel")
    return view.cacheable(request, answer[0], now, answer[1])


ROUTES = [
    Route("/v1/guide", get_guide, methods=["GET"]),
    Route("/v1/channels/{channel_id:str}/now", get_now, methods=["GET"]),
    Route("/v1/guide/imports", create_import, methods=["POST"]),
    Route("/v1/guide/mappings", list_mappings, methods=["GET"]),
    Route("/v1/guide/mappings/{xmltv_id:str}", put_mapping, methods=["PUT"]),
    Route("/v1/guide/mappings/{xmltv_id:str}", get_mapping, methods=["GET"]),
    Route("/v1/guide/mappings/{xmltv_id:str}", delete_mapping, methods=["DELETE"]),
    Route("/v1/guide/sources", create_source, methods=["POST"]),
    Route("/v1/guide/sources", list_sources, methods=["GET"]),
    Route("/v1/guide/sources/{source_id:str}", get_source, methods=["GET"]),
    Route("/v1/guide/sources/{source_id:str}", update_source, methods=["PATCH"]),
    Route("/v1/guide/sources/{source_id:str}", delete_source, methods=["DELETE"]),
    Route("/v1/guide/sources/{source_id:str}/fetch", fetch_source_now, methods=["POST"]),
]
