"""The channels API under /v1/channels, for admins: create, list, read, change, delete.

A change to what a runner reads (sources, ladder, durations, windows, key
rotation) bumps the channel's ``revision``: its runner notices within a few
seconds and restarts its encoder on the new configuration (a discontinuity in
the playlists). A deleted channel's runner lets it go at its next look, and
its rows (segment index, package links, guide mapping and programmes) go with
it through the database's cascades. Its objects are removed here, and once
more by its run when that has stopped writing (``ChannelRun``): a run in the
middle of a segment may store one after this pass.

A listener source's port is its channel's alone (``live.listeners``): a create or
change naming a port another channel listens on is refused with 409.

Lists are ordered by channel number (channels without one last), then id; the
``after`` cursor is the last channel's id.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin.accounts import packages
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.accounts.http import admin_claims, claims_with, require_admin, run_as_caller
from stb_origin.assets.channels import (
    AUTO,
    DEFAULT_DVR_WINDOW_S,
    DEFAULT_FAILOVER_AFTER_S,
    DEFAULT_KEY_ROTATION_S,
    DEFAULT_SEGMENT_S,
    Channel,
    ChannelStatus,
    page_by_number,
)
from stb_origin.db import changes as change_log
from stb_origin.db import stamps
from stb_origin.db.types import new_id, utcnow
from stb_origin.live import channel_body, listeners, retention, urls
from stb_origin.live.channel_body import Changes
from stb_origin.origin.takedowns import Takedowns
from stb_origin.scopes import ADMIN
from stb_origin.storage import StorageError
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.live")

PATH = "/v1/channels"


def channel_json(channel: Channel, package_names: list[str]) -> Json:
    return {**channel.to_json(), "packages": package_names,
            "playback": {"hls": urls.live_master(channel.id)}}


def _found(session: Session, channel_id: str, for_update: bool = False) -> Channel:
    channel = session.get(Channel, channel_id, with_for_update=for_update)
    if channel is None:
        raise NotFound("no such channel")
    return channel


def _check_references(session: Session, changes: Changes, channel_id: str | None) -> None:
    """Refusals that need the database: unknown packages, a number taken."""
    if changes.packages:
        unknown = packages.unknown_names(session, changes.packages)
        if unknown:
            listed = ", ".join(f'"{name}"' for name in unknown)
            raise InvalidValue(f"packages: no such package: {listed} (an admin creates"
                               " packages with POST /v1/packages)")
    number = changes.columns.get("number")
    if number is not None:
        holder = session.scalar(select(Channel.id).where(Channel.number == number))
        if holder is not None and holder != channel_id:
            raise AlreadyExists(f"channel number {number} is taken by channel {holder}")


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request took the number after our check.
        raise AlreadyExists("the channel number was just taken") from None


async def _content_changed(request: Request, channel_id: str) -> None:
    """After the commit: processes keeping which packages hold the channel (and its
    keys) reread them (``db.stamps``), as for an asset."""
    await anyio.to_thread.run_sync(stamps.renew, services_of(request).redis,
                                   stamps.asset(channel_id))


async def create_channel(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, channel_body.FIELDS)
    changes = channel_body.read_changes(body, creating=True)
    channel_id = new_id()

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        _check_references(session, changes, None)
        now = utcnow()
        columns: dict[str, Any] = {
            "ladder": AUTO, "segment_s": DEFAULT_SEGMENT_S, "dvr_window_s": DEFAULT_DVR_WINDOW_S,
            "key_rotation_s": DEFAULT_KEY_ROTATION_S,
            "failover_after_s": DEFAULT_FAILOVER_AFTER_S, "number": None, **changes.columns}
        channel = Channel(id=channel_id, revision=1, epoch=0,
                          status=ChannelStatus.STARTING.value, created_at=now, updated_at=now,
                          **columns)
        session.add(channel)
        _flush(session)
        listeners.take(session, channel_id, channel.sources)
        packages.set_channel_packages(session, channel_id, changes.packages or ())
        change_log.record(session, change_log.CHANNEL, [channel_id])
        return channel_json(channel, changes.packages or [])

    created = await run_as_caller(request, claims, work)
    if changes.packages:
        await _content_changed(request, channel_id)
    log.info("channel created", extra={"channel_id": channel_id, "subject": claims.subject})
    return json_response(created, 201, f"{PATH}/{channel_id}")


async def list_channels(request: Request) -> Response:
    claims = await claims_with(request, ADMIN)
    limit, after = page_params(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        found = page_by_number(session, limit + 1, after)
        held = packages.packages_of_channels(session, [c.id for c in found])
        return [channel_json(c, held[c.id]) for c in found]

    return paged(await run_as_caller(request, claims, work), limit, PATH, "id")


async def get_channel(request: Request) -> Response:
    claims = await claims_with(request, ADMIN)
    channel_id = path_id(request, "channel_id", "channel")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        channel = _found(session, channel_id)
        held = packages.packages_of_channels(session, [channel_id])[channel_id]
        return channel_json(channel, held)

    return json_response(await run_as_caller(request, claims, work))


async def update_channel(request: Request) -> Response:
    claims = await admin_claims(request)
    channel_id = path_id(request, "channel_id", "channel")
    body = await read_object(request, channel_body.FIELDS)
    changes = channel_body.read_changes(body, creating=False)

    def work(session: Session, caller: Caller) -> tuple[Json, bool, bool]:
        require_admin(caller)
        # Locked: two changes at once must each bump the revision.
        channel = _found(session, channel_id, for_update=True)
        _check_references(session, changes, channel_id)
        changed = {column for column, value in changes.columns.items()
                   if getattr(channel, column) != value}
        for column in changed:
            setattr(channel, column, changes.columns[column])
        restart = bool(changed & channel_body.RUNNER_COLUMNS)
        if restart:
            channel.revision += 1
        held = packages.packages_of_channels(session, [channel_id])[channel_id]
        repackaged = changes.packages is not None and changes.packages != held
        if repackaged:
            assert changes.packages is not None
            packages.set_channel_packages(session, channel_id, changes.packages)
            held = changes.packages
        if changed or repackaged:
            channel.updated_at = utcnow()
            change_log.record(session, change_log.CHANNEL, [channel_id])
        _flush(session)
        if "sources" in changed:
            listeners.take(session, channel_id, channel.sources)
        return channel_json(channel, held), restart, repackaged

    updated, restart, repackaged = await run_as_caller(request, claims, work)
    if repackaged:
        await _content_changed(request, channel_id)
    log.info("channel changed", extra={"channel_id": channel_id, "restart": restart,
                                       "revision": updated["revision"],
                                       "subject": claims.subject})
    return json_response(updated)


async def delete_channel(request: Request) -> Response:
    claims = await admin_claims(request)
    channel_id = path_id(request, "channel_id", "channel")
    services = services_of(request)
    takedowns: Takedowns = request.app.state.takedowns

    def remove() -> bool:
        with services.db.session() as session:
            if session.get(Channel, channel_id) is None:
                return False
        # No origin serves it from memory from here on; then its objects go before its
        # row, so that a storage failure leaves a channel to delete again, not orphans.
        takedowns.take_down(channel_id)
        retention.purge(services, channel_id)
        with services.db.session() as session:
            channel = session.get(Channel, channel_id, with_for_update=True)
            if channel is None:
                return False
            session.delete(channel)  # the database cascades to every row naming it
            change_log.record(session, change_log.CHANNEL, [channel_id])
        # Deleted: from here on, failures are only logged (a retry would find nothing).
        try:
            stamps.renew(services.redis, stamps.asset(channel_id))
        except RedisError:
            log.warning("stamp not renewed; key servers' copies expire on their own",
                        extra={"channel_id": channel_id})
        # What its runner stored meanwhile (it purges too once it has let go).
        try:
            retention.purge(services, channel_id)
        except StorageError:
            log.warning("a deleted channel's last objects are left to its runner",
                        extra={"channel_id": channel_id})
        return True

    try:
        found = await anyio.to_thread.run_sync(remove)
    except StorageError:
        raise ApiError(503, "storage_unavailable", "storage is unavailable; the channel was not"
                       " deleted, try again", {"Retry-After": "5", **NO_STORE}) from None
    except RedisError:
        raise ApiError(503, "unavailable", "Redis is unavailable; the channel was not deleted,"
                       " try again", {"Retry-After": "5", **NO_STORE}) from None
    if not found:
        raise ApiError(404, "not_found", "no such channel")
    log.info("channel deleted", extra={"channel_id": channel_id, "subject": claims.subject})
    return Response(status_code=204, headers=NO_STORE)


ROUTES = [
    Route(PATH, create_channel, methods=["POST"]),
    Route(PATH, list_channels, methods=["GET"]),
    Route(PATH + "/{channel_id:str}", get_channel, methods=["GET"]),
    Route(PATH + "/{channel_id:str}", update_channel, methods=["PATCH"]),
    Route(PATH + "/{channel_id:str}", delete_channel, methods=["DELETE"]),
]
