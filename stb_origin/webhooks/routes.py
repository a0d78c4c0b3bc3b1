"""The webhooks API (admins): subscriptions, their secrets, delivery logs, redelivery."""

from __future__ import annotations

import logging

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import admin_claims, run_as_caller
from stb_origin.db.types import ID
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import Fields, read_object
from stb_origin.web.paging import page_params, paged
from stb_origin.webhooks import deliveries, subscriptions, targets
from stb_origin.webhooks.consumer import dispatch

log = logging.getLogger("stb_origin.webhooks")

WEBHOOKS = "/v1/webhooks"
_FIELDS = ("url", "events", "active")


async def create_webhook(request: Request) -> Response:
    claims = await admin_claims(request)
    body = await read_object(request, _FIELDS)
    events, active = _events(body), _active(body)
    if "url" not in body or events is None:
        raise ApiError(400, "bad_request", "url and events are required")
    # Last: it may wait for DNS.
    url = await _checked_url(request, body.raw("url"))
    envelope = services_of(request).envelope

    def work(session: Session, _caller: Caller) -> Json:
        try:
            webhook, secret = subscriptions.create(session, envelope, url, events,
                                                   True if active is None else active)
        except subscriptions.TooMany as exc:
            raise ApiError(409, "too_many_webhooks", str(exc)) from None
        # The only time the secret is shown (and again at each rotation).
        return {**webhook.to_json(), "secret": secret}

    created = await run_as_caller(request, claims, work)
    log.info("webhook created", extra={"webhook_id": created["id"], "subject": claims.subject})
    return json_response(created, 201, f"{WEBHOOKS}/{created['id']}")


async def list_webhooks(request: Request) -> Response:
    claims = await admin_claims(request)
    limit, after = page_params(request)
    after = _cursor(after)
    items = await run_as_caller(request, claims, lambda session, _caller: [
        w.to_json() for w in subscriptions.page(session, limit + 1, after)])
    return paged(items, limit, WEBHOOKS, "id")


async def get_webhook(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    return json_response(await run_as_caller(
        request, claims, lambda session, _caller: subscriptions.get(session, webhook_id)
        .to_json()))


async def update_webhook(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    body = await read_object(request, _FIELDS)
    events, active = _events(body), _active(body)
    url = await _checked_url(request, body.raw("url")) if "url" in body else None

    def work(session: Session, _caller: Caller) -> Json:
        return subscriptions.update(session, webhook_id, url=url, events=events,
                                    active=active).to_json()

    return json_response(await run_as_caller(request, claims, work))


async def delete_webhook(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    await run_as_caller(request, claims,
                        lambda session, _caller: subscriptions.delete(session, webhook_id))
    log.info("webhook deleted", extra={"webhook_id": webhook_id, "subject": claims.subject})
    return Response(status_code=204, headers=NO_STORE)


async def rotate_secret(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    envelope = services_of(request).envelope

    def work(session: Session, _caller: Caller) -> Json:
        webhook, secret = subscriptions.rotate_secret(session, envelope, webhook_id)
        return {**webhook.to_json(), "secret": secret}

    rotated = await run_as_caller(request, claims, work)
    log.info("webhook secret rotated", extra={"webhook_id": webhook_id,
                                              "subject": claims.subject})
    return json_response(rotated)


async def list_deliveries(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    limit, after = page_params(request)
    after = _cursor(after)

    def work(session: Session, _caller: Caller) -> list[Json]:
        subscriptions.get(session, webhook_id)
        return deliveries.log_page(session, webhook_id, limit + 1, after)

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, f"{WEBHOOKS}/{webhook_id}/deliveries", "id")


async def redeliver(request: Request) -> Response:
    claims = await admin_claims(request)
    webhook_id = path_id(request, "webhook_id", "webhook")
    delivery_id = path_id(request, "delivery_id", "delivery")
    delivery = await run_as_caller(request, claims, lambda session, _caller: (
        deliveries.redeliver(session, webhook_id, delivery_id)))
    # Due now: hand it to the workers at once rather than at the consumer's next turn.
    await anyio.to_thread.run_sync(dispatch, services_of(request))
    log.info("webhook redelivery", extra={"webhook_id": webhook_id,
                                          "delivery_id": delivery_id, "subject": claims.subject})
    return json_response(delivery, 202)


async def _checked_url(request: Request, value: object) -> str:
    """The URL, allowed by the settings and resolving outside (SSRF); 400 otherwise."""
    settings = services_of(request).settings

    def check() -> str:
        target = targets.parse(value, settings.webhooks_allow_http)
        targets.resolve(target, settings.webhooks_allow_private)
        return str(value)

    try:
        return await anyio.to_thread.run_sync(check)
    except targets.BadTarget as exc:
        raise ApiError(400, "bad_target", str(exc)) from None


def _events(body: Fields) -> list[str] | None:
    if "events" not in body:
        return None
    try:
        return subscriptions.check_events(body.raw("events"))
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _active(body: Fields) -> bool | None:
    value = body.raw("active")
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, "bad_request", "active: expected true or false")
    return value


def _cursor(after: str | None) -> str | None:
    if after is not None and not ID.fullmatch(after):
        raise ApiError(400, "bad_request", "after: an id, as `next` gives it")
    return after


ROUTES = [
    Route(WEBHOOKS, create_webhook, methods=["POST"]),
    Route(WEBHOOKS, list_webhooks, methods=["GET"]),
    Route(WEBHOOKS + "/{webhook_id:str}", get_webhook, methods=["GET"]),
    Route(WEBHOOKS + "/{webhook_id:str}", update_webhook, methods=["PATCH"]),
    Route(WEBHOOKS + "/{webhook_id:str}", delete_webhook, methods=["DELETE"]),
    Route(WEBHOOKS + "/{webhook_id:str}/secret", rotate_secret, methods=["POST"]),
    Route(WEBHOOKS + "/{webhook_id:str}/deliveries", list_deliveries, methods=["GET"]),
    Route(WEBHOOKS + "/{webhook_id:str}/deliveries/{delivery_id:str}/redeliver", redeliver,
          methods=["POST"]),
]
