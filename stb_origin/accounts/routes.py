"""The accounts API under /v1/: users, devices, packages and entitlements.

Two scopes: ``account`` lets a user manage their own account's devices and read
its users and entitlements; ``admin`` lets an admin user (or the operator)
manage everyone's. Lists are keyset-paginated like /v1/assets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import eventlog, scopes
from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.errors import InvalidValue, NotFound
from stb_origin.accounts.http import (
    account_filter,
    admin_claims,
    claims_with,
    forbidden,
    require_access,
    require_admin,
    run_as_caller,
)
from stb_origin.accounts.models import Role
from stb_origin.auth import denylist
from stb_origin.auth.tokens import LEEWAY_S
from stb_origin.db import stamps
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.accounts")


class _AccountObject(Protocol):
    @property
    def account_id(self) -> str: ...

    def to_json(self) -> Json: ...


Owned = TypeVar("Owned", bound=_AccountObject)


def _owned(caller: Caller, found: Owned | None, what: str) -> Owned:
    """found, if it exists and the caller may act for its account (404 / 403 else)."""
    if found is None:
        raise NotFound(f"no such {what}")
    require_access(caller, found.account_id)
    return found


async def _get_owned(request: Request, param: str, what: str,
                     load: Callable[[Session, str], _AccountObject | None]) -> Response:
    claims = await claims_with(request, scopes.ADMIN, scopes.ACCOUNT)
    object_id = path_id(request, param, what)

    def work(session: Session, caller: Caller) -> Json:
        return _owned(caller, load(session, object_id), what).to_json()

    return json_response(await run_as_caller(request, claims, work))


# --- users ----------------------------------------------------------------------

async def create_user(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, {"email", "name", "role", "password", "account"})
    email = body.text("email")
    name = body.optional_text("name") or ""
    role = body.optional_text("role") or Role.SUBSCRIBER.value
    password = body.optional_text("password")
    account = body.optional_text("account")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        user = users.create_user(session, email, role=role, name=name, password=password,
                                 account_id=account)
        return user.to_json()

    user = await run_as_caller(request, claims, work)
    log.info("user created", extra={"user_id": user["id"], "subject": claims.subject})
    return json_response(user, 201, f"/v1/users/{user['id']}")


async def list_users(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN)
    limit, after = page_params(request)
    account = request.query_params.get("account")

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        return [u.to_json() for u in users.page_users(session, limit + 1, after, account)]

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/users", "id", {"account": account})


async def get_user(request: Request) -> Response:
    return await _get_owned(request, "user_id", "user", users.get_user)


# --- devices --------------------------------------------------------------------

async def list_devices(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN, scopes.ACCOUNT)
    limit, after = page_params(request)
    requested = request.query_params.get("account")

    def work(session: Session, caller: Caller) -> tuple[list[Json], str | None]:
        account = account_filter(caller, requested)
        found = devices.page_devices(session, limit + 1, after, account)
        return [d.to_json() for d in found], account

    items, account = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/devices", "id", {"account": account})


async def register_device(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN, scopes.ACCOUNT)
    body = await read_object(request, {"serial", "model", "capabilities", "account"})
    serial = body.text("serial")
    model = body.text("model")
    requested = body.optional_text("account")
    raw = body.raw("capabilities")
    try:
        capabilities = Capabilities.from_json({} if raw is None else raw)
    except InvalidValue as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    max_devices = services_of(request).settings.max_devices_per_account

    def work(session: Session, caller: Caller) -> tuple[Json, bool]:
        account = requested or caller.account_id
        if account is None:
            if caller.is_admin:
                raise InvalidValue("account: required for a token without an account")
            raise forbidden("this token has no account")
        require_access(caller, account)
        known = devices.find_active_device(session, account, serial) is not None
        device = devices.register_device(session, account, serial, model, capabilities,
                                         max_devices=max_devices)
        return device.to_json(), not known

    device, created = await run_as_caller(request, claims, work)
    if created:
        log.info("device registered", extra={"device_id": device["id"],
                                             "account_id": device["account"],
                                             "subject": claims.subject})
    return json_response(device, 201 if created else 200, f"/v1/devices/{device['id']}")


async def get_device(request: Request) -> Response:
    return await _get_owned(request, "device_id", "device", devices.get_device)


async def revoke_device(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN, scopes.ACCOUNT)
    device_id = path_id(request, "device_id", "device")

    def work(session: Session, caller: Caller) -> Json:
        _owned(caller, devices.get_device(session, device_id), "device")
        return devices.revoke_device(session, device_id).to_json()

    device = await run_as_caller(request, claims, work)
    # Its access tokens stop at once on every server (not only where the device
    # is looked up), until the last of them has expired anyway; copies of the
    # account's devices that processes keep (drm.delivery) are stale from now.
    services = services_of(request)

    def announce() -> None:
        denylist.deny_device(services.redis, device_id, services.signer.access_ttl_s + LEEWAY_S)
        stamps.renew(services.redis, stamps.account(device["account"]))
        # Its open event connections end (events.socket), told why.
        eventlog.send_command(services.redis, device_id, device["account"], "sign_out")

    await anyio.to_thread.run_sync(announce)
    log.info("device revoked", extra={"device_id": device_id, "subject": claims.subject})
    return json_response(device)


# --- packages -------------------------------------------------------------------

async def create_package(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, {"name", "title"})
    name = body.text("name")
    title = body.optional_text("title") or ""

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        return packages.create_package(session, name, title).to_json()

    package = await run_as_caller(request, claims, work)
    return json_response(package, 201, f"/v1/packages/{package['name']}")


async def list_packages(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN)
    limit, after = page_params(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        return [p.to_json() for p in packages.page_packages(session, limit + 1, after)]

    return paged(await run_as_caller(request, claims, work), limit, "/v1/packages", "name")


async def get_package(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN)
    name = request.path_params["name"]

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        package = packages.get_package(session, name)
        if package is None:
            raise NotFound("no such package")
        return package.to_json()

    return json_response(await run_as_caller(request, claims, work))


async def add_package_asset(request: Request) -> Response:
    claims = await admin_claims(request)
    name = request.path_params["name"]
    body = await read_object(request, {"asset"})
    asset_id = body.text("asset")

    def work(session: Session, caller: Caller) -> tuple[Json, bool]:
        require_admin(caller)
        link, added = packages.add_asset(session, name, asset_id)
        return link.to_json(), added

    link, added = await run_as_caller(request, claims, work)
    await _asset_changed(request, asset_id)
    return json_response(link, 201 if added else 200)


async def list_package_assets(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN)
    name = request.path_params["name"]
    limit, after = page_params(request)

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        if packages.get_package(session, name) is None:
            raise NotFound("no such package")
        return [a.to_json() for a in packages.page_assets(session, name, limit + 1, after)]

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, f"/v1/packages/{name}/assets", "asset")


async def remove_package_asset(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN)
    name = request.path_params["name"]
    asset_id = request.path_params["asset_id"]

    def work(session: Session, caller: Caller) -> bool:
        require_admin(caller)
        return packages.remove_asset(session, name, asset_id)

    if not await run_as_caller(request, claims, work):
        raise ApiError(404, "not_found", "the asset is not in this package")
    await _asset_changed(request, asset_id)
    return Response(status_code=204, headers=NO_STORE)


async def _asset_changed(request: Request, asset_id: str) -> None:
    """After the commit: processes keeping which packages hold the asset reread it."""
    await anyio.to_thread.run_sync(stamps.renew, services_of(request).redis,
                                   stamps.asset(asset_id))


# --- entitlements ---------------------------------------------------------------

async def create_entitlement(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, {"account", "package", "valid_from", "valid_until"})
    account = body.text("account")
    package = body.text("package")
    valid_from = body.optional_time("valid_from")
    valid_until = body.optional_time("valid_until")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        granted = entitlements.grant(session, account, package, valid_from, valid_until)
        return granted.to_json()

    entitlement = await run_as_caller(request, claims, work)
    await _entitlements_changed(request, "granted", entitlement)
    log.info("entitlement granted", extra={"entitlement_id": entitlement["id"],
                                           "account_id": account, "subject": claims.subject})
    return json_response(entitlement, 201, f"/v1/entitlements/{entitlement['id']}")


async def revoke_entitlement(request: Request) -> Response:
    claims = await admin_claims(request)
    entitlement_id = path_id(request, "entitlement_id", "entitlement")

    def work(session: Session, caller: Caller) -> Json:
        require_admin(caller)
        return entitlements.revoke(session, entitlement_id).to_json()

    revoked = await run_as_caller(request, claims, work)
    # Key delivery stops at once on every process: its copies of the account reread.
    await _entitlements_changed(request, "revoked", revoked)
    log.info("entitlement revoked", extra={"entitlement_id": entitlement_id,
                                           "account_id": revoked["account"],
                                           "subject": claims.subject})
    return json_response(revoked)


async def _entitlements_changed(request: Request, action: str, entitlement: Json) -> None:
    """After the commit: processes keeping the account's entitlements (drm.delivery)
    reread them, and the account's boxes hear of it (eventlog: that account's only)."""
    redis = services_of(request).redis
    account = entitlement["account"]

    def announce() -> None:
        stamps.renew(redis, stamps.account(account))
        eventlog.publish(redis, eventlog.ENTITLEMENTS,
                         {"action": action, "entitlement": entitlement},
                         key=entitlement["id"], account=account)

    await anyio.to_thread.run_sync(announce)


async def list_entitlements(request: Request) -> Response:
    claims = await claims_with(request, scopes.ADMIN, scopes.ACCOUNT)
    limit, after = page_params(request)
    requested = request.query_params.get("account")

    def work(session: Session, caller: Caller) -> tuple[list[Json], str | None]:
        account = account_filter(caller, requested)
        found = entitlements.page_entitlements(session, limit + 1, after, account)
        return [e.to_json() for e in found], account

    items, account = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/entitlements", "id", {"account": account})


async def get_entitlement(request: Request) -> Response:
    return await _get_owned(request, "entitlement_id", "entitlement",
                            entitlements.get_entitlement)


ROUTES = [
    Route("/v1/users", create_user, methods=["POST"]),
    Route("/v1/users", list_users, methods=["GET"]),
    Route("/v1/users/{user_id:str}", get_user, methods=["GET"]),
    Route("/v1/devices", register_device, methods=["POST"]),
    Route("/v1/devices", list_devices, methods=["GET"]),
    Route("/v1/devices/{device_id:str}", get_device, methods=["GET"]),
    Route("/v1/devices/{device_id:str}/revoke", revoke_device, methods=["POST"]),
    Route("/v1/packages", create_package, methods=["POST"]),
    Route("/v1/packages", list_packages, methods=["GET"]),
    Route("/v1/packages/{name:str}", get_package, methods=["GET"]),
    Route("/v1/packages/{name:str}/assets", add_package_asset, methods=["POST"]),
    Route("/v1/packages/{name:str}/assets", list_package_assets, methods=["GET"]),
    Route("/v1/packages/{name:str}/assets/{asset_id:str}", remove_package_asset,
          methods=["DELETE"]),
    Route("/v1/entitlements", create_entitlement, methods=["POST"]),
    Route("/v1/entitlements", list_entitlements, methods=["GET"]),
    Route("/v1/entitlements/{entitlement_id:str}", get_entitlement, methods=["GET"]),
    Route("/v1/entitlements/{entitlement_id:str}/revoke", revoke_entitlement,
          methods=["POST"]),
]
