"""Playback activity: boxes report progress; continue watching and recent channels.

    POST /v1/activity              a report (``activity.report``), from a box
    GET  /v1/activity/continue     ?profile=: the continue-watching row
    GET  /v1/activity/channels     ?profile=: recently watched channels
    GET  /v1/activity/assets/{id}  ?profile=: the resume point of one asset

All take a box's playback token (bound to a device): the account is the
device's, so a box only ever reads and writes its own household's activity.
Reports are bounded per box and item (STB_ACTIVITY_REPORT_INTERVAL_S, answered
429 past it) and refused (403) for content the account is not entitled to. A
``stop`` frees the box's stream slot at once (``drm.streams``); a progress
report keeps the slot it holds.
"""

from __future__ import annotations

import math
from datetime import datetime

import anyio
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stb_origin import ratelimit, scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.entitlements import is_entitled
from stb_origin.accounts.errors import NotFound
from stb_origin.accounts.http import claims_with, run_as_caller
from stb_origin.activity import store
from stb_origin.activity.models import ResumePoint
from stb_origin.activity.report import FIELDS, Kind, Report, bad, parse, profile_of
from stb_origin.assets import records
from stb_origin.assets.channels import Channel
from stb_origin.auth.tokens import Claims
from stb_origin.db.types import iso, utcnow
from stb_origin.drm import streams
from stb_origin.drm.streams import StreamLimit
from stb_origin.services import Services
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object
from stb_origin.web.paging import page_params, paged


async def post_activity(request: Request) -> JSONResponse:
    services = services_of(request)
    claims = await _box_claims(request)
    report = parse(await read_object(request, FIELDS), utcnow())
    await _within_rate(services, claims, report)

    def work(session: Session, caller: Caller) -> Json:
        account_id = _account(caller)
        now = utcnow()
        if report.asset_id is not None:
            answer = _record_asset(session, account_id, report, caller, now)
        else:
            answer = _record_channel(session, account_id, report, caller, now)
        _note_stream(services, account_id, caller, report)
        return answer

    return json_response(await run_as_caller(request, claims, work))


async def get_continue(request: Request) -> JSONResponse:
    claims = await _box_claims(request)
    profile, limit, after = _listing(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        found = store.continue_row(session, _account(caller), profile, utcnow(), limit + 1,
                                   after)
        return [{"asset": asset.id, "title": asset.title, "position": point.position_s,
                 "duration": asset.duration_s, "at": iso(point.reported_at)}
                for point, asset in found]

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/activity/continue", "asset", {"profile": profile})


async def get_channels(request: Request) -> JSONResponse:
    claims = await _box_claims(request)
    profile, limit, after = _listing(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        found = store.recent_channels(session, _account(caller), profile, utcnow(),
                                      limit + 1, after)
        return [{"channel": channel.id, "name": channel.name, "number": channel.number,
                 "at": iso(visit.reported_at)} for visit, channel in found]

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/activity/channels", "channel", {"profile": profile})


async def get_resume_point(request: Request) -> JSONResponse:
    claims = await _box_claims(request)
    asset_id = path_id(request, "asset_id", "resume point")
    profile = _profile(request)

    def work(session: Session, caller: Caller) -> Json:
        point = session.get(ResumePoint, (_account(caller), profile, asset_id))
        if point is None:
            raise NotFound("no resume point: this profile has not watched this asset")
        return _kept(point)

    return json_response(await run_as_caller(request, claims, work))


# --- the steps ----------------------------------------------------------------------


async def _box_claims(request: Request) -> Claims:
    claims = await claims_with(request, scopes.PLAYBACK)
    if claims.device_id is None:
        raise ApiError(403, "forbidden", "activity is a box's: this needs a device's token",
                       NO_STORE)
    return claims


def _account(caller: Caller) -> str:
    if caller.account_id is None:  # the operator's token names a device of nobody's
        raise ApiError(403, "forbidden", "activity is an account's: this token has none",
                       NO_STORE)
    return caller.account_id


def _listing(request: Request) -> tuple[str, int, str | None]:
    profile = _profile(request)
    limit, after = page_params(request)
    return profile, limit, after


def _profile(request: Request) -> str:
    profile = request.query_params.get("profile")
    if profile is None:
        raise bad('missing required query parameter "profile"')
    return profile_of(profile)


async def _within_rate(services: Services, claims: Claims, report: Report) -> None:
    """One accepted report per box, item and kind per interval: a stop right after a
    progress report still frees the slot."""
    interval = services.settings.activity_report_interval_s
    key = f"activity:{claims.device_id}:{report.content_id}:{report.kind.value}"
    try:
        wait = await anyio.to_thread.run_sync(ratelimit.hit, services.redis, key, 1, interval)
    except RedisError:
        raise ApiError(503, "unavailable", "reports cannot be counted now; retry shortly",
                       {"Retry-After": "5", **NO_STORE}) from None
    if wait is not None:
        raise ApiError(429, "rate_limited",
                       f"at most one {report.kind.value} report per item every {interval} s",
                       {"Retry-After": str(max(1, math.ceil(wait))), **NO_STORE})


def _record_asset(session: Session, account_id: str, report: Report, caller: Caller,
                  now: datetime) -> Json:
    assert report.asset_id is not None and report.position_s is not None
    asset = records.get(session, report.asset_id)
    if asset is None:
        raise NotFound("no such asset")
    _require_entitled(session, account_id, asset.id, now)
    return _kept(store.record_asset(session, account_id, report.profile, asset,
                                    report.position_s, report.at, _device(caller)))


def _kept(point: ResumePoint) -> Json:
    return {"asset": point.asset_id, "profile": point.profile, "position": point.position_s,
            "finished": point.finished, "at": iso(point.reported_at)}


def _record_channel(session: Session, account_id: str, report: Report, caller: Caller,
                    now: datetime) -> Json:
    assert report.channel_id is not None
    if session.get(Channel, report.channel_id) is None:
        raise NotFound("no such channel")
    _require_entitled(session, account_id, report.channel_id, now)
    visit = store.record_channel(session, account_id, report.profile, report.channel_id,
                                 report.at, _device(caller))
    return {"channel": visit.channel_id, "profile": visit.profile,
            "at": iso(visit.reported_at)}


def _require_entitled(session: Session, account_id: str, content_id: str,
                      now: datetime) -> None:
    if not is_entitled(session, account_id, content_id, now):
        raise ApiError(403, "not_entitled", "the account is not entitled to this", NO_STORE)


def _note_stream(services: Services, account_id: str, caller: Caller, report: Report) -> None:
    limit = StreamLimit(services.settings.max_streams_per_account,
                        services.settings.stream_idle_s)
    if not limit.on:
        return
    try:
        if report.kind == Kind.STOP:
            streams.release(services.redis, account_id, _device(caller))
        else:
            streams.renew(services.redis, limit, account_id, _device(caller),
                          utcnow().timestamp())
    except RedisError:
        raise ApiError(503, "unavailable", "the stream slot cannot be updated; retry shortly",
                       {"Retry-After": "5", **NO_STORE}) from None


def _device(caller: Caller) -> str:
    assert caller.device_id is not None, "_box_claims let only a device's token in"
    return caller.device_id


ROUTES = [
    Route("/v1/activity", post_activity, methods=["POST"]),
    Route("/v1/activity/continue", get_continue, methods=["GET"]),
    Route("/v1/activity/channels", get_channels, methods=["GET"]),
    Route("/v1/activity/assets/{asset_id:str}", get_resume_point, methods=["GET"]),
]
