"""The HTTP application: ingest, origin, key delivery and health in one process."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from stb_origin.accounts import routes as account_routes
from stb_origin.activity import routes as activity_routes
from stb_origin.app import health
from stb_origin.app import metrics as metrics_endpoint
from stb_origin.app.sweeper import sweep_forever
from stb_origin.catalog import art_routes
from stb_origin.catalog import box_routes as title_routes
from stb_origin.catalog import routes as catalog_routes
from stb_origin.console import routes as console_routes
from stb_origin.drm import routes as key_routes
from stb_origin.drm.delivery import KeyDelivery
from stb_origin.events import routes as event_routes
from stb_origin.events import service as event_service
from stb_origin.graph import routes as graph_routes
from stb_origin.guide import routes as guide_routes
from stb_origin.guide.sources import GuidePoller
from stb_origin.ingest import routes as ingest_routes
from stb_origin.live import clip_routes
from stb_origin.live import routes as channel_routes
from stb_origin.live.served import LivePlaylists
from stb_origin.oauth import routes as oauth_routes
from stb_origin.observability import logs
from stb_origin.observability.access_log import AccessLog
from stb_origin.origin.access import HlsAccess
from stb_origin.origin.routes import routes as origin_routes
from stb_origin.origin.takedowns import Takedowns
from stb_origin.playback import routes as playback_routes
from stb_origin.reconciler import Reconciler
from stb_origin.services import Services
from stb_origin.sync import routes as sync_routes
from stb_origin.web import openapi
from stb_origin.web.errors import EXCEPTION_HANDLERS
from stb_origin.webhooks import routes as webhook_routes
from stb_origin.webhooks import service as webhook_service


async def _flush_access_lines() -> None:
    while True:
        await anyio.sleep(logs.ACCESS_FLUSH_S)
        logs.flush_access_lines()


def for_server(services: Services) -> Starlette:
    """The app of a server process, which serves it until the process ends."""
    app = create_app(services)
    # What start-up made (modules, the app, the signing keys) lives as long as
    # the process: out of the collector's sight, so that a full collection
    # under load scans only what requests made, instead of stalling every
    # request for ~50 ms (the p99 of bench/key_delivery.py).
    gc.freeze()
    return app


def create_app(services: Services) -> Starlette:
    # Load the signing keys now (making the first on a new install): never in
    # the middle of a request's own transaction, which on SQLite would wait
    # for itself.
    services.signer.jwks()
    # What this process keeps in memory for the key path and the origin.
    takedowns = Takedowns(services.redis)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as background:
            # Without it the origin trusts no copy in memory (origin.takedowns).
            background.start_soon(app.state.takedowns.watch)
            background.start_soon(_flush_access_lines)
            if services.settings.reconcile_interval_s > 0:
                background.start_soon(Reconciler(services).watch)
            background.start_soon(sweep_forever, services)  # first at start-up
            # XMLTV sources due: each claimed in the database, so one replica fetches it.
            background.start_soon(GuidePoller(services).watch)
            # Events to webhook deliveries, shared with the other replicas (a consumer group).
            background.start_soon(webhook_service.watch, services)
            try:
                # GET /v1/events: this process's reader of the event log.
                async with event_service.running(services) as events:
                    app.state.events = events
                    yield
            finally:
                background.cancel_scope.cancel()
        # First: the key audit still waiting is written before the engine goes.
        await app.state.key_delivery.aclose()
        services.close()

    app = Starlette(
        # The router tries routes in order: /hls/ (nearly every request) comes
        # first, /keys (every segment's key, at every start and rotation) next.
        routes=[*origin_routes(services.storage,
                               playlist_max_age_s=services.settings.playlist_max_age_s,
                               access=HlsAccess.from_settings(services.settings),
                               takedowns=takedowns,
                               generated=LivePlaylists(services)),
                *key_routes.ROUTES,
                *health.ROUTES, *metrics_endpoint.routes(services),
                *ingest_routes.ROUTES, *account_routes.ROUTES,
                *oauth_routes.ROUTES, *playback_routes.ROUTES, *channel_routes.ROUTES,
                *clip_routes.ROUTES, *guide_routes.ROUTES, *sync_routes.ROUTES,
                *graph_routes.routes(services.settings), *activity_routes.ROUTES,
                *catalog_routes.ROUTES, *title_routes.ROUTES, *art_routes.ROUTES,
                *event_routes.ROUTES,
                *webhook_routes.ROUTES, *console_routes.ROUTES,
                *openapi.routes()],
        # Key fetches leave for their handler once logged (drm.routes.KeyShortcut).
        middleware=[Middleware(AccessLog), Middleware(key_routes.KeyShortcut)],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.key_delivery = KeyDelivery.for_services(services)
    app.state.takedowns = takedowns
    return app
