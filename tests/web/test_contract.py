"""The document against a running server: schemathesis sends what every operation
takes (and what it must refuse) to the real app under uvicorn, over real Redis and
a real database, and each answer must be one the document lists: no 500, a
documented status, content type, body and headers.

Real credentials and real objects let it past the token check: a box entitled to
a published asset, an admin user, a household's own account token, and OAuth
clients. Half of the generated cases (chosen from the case itself, so a run is
repeatable) name those objects instead of random ids; one in eight goes without
any credentials.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from redis import Redis
from schemathesis import Case
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlalchemy import select

from stb_origin import migrations
from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.models import Role
from stb_origin.app import create_app
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset
from stb_origin.catalog import titles
from stb_origin.catalog.titles import TitleFields
from stb_origin.db.types import new_id
from stb_origin.oauth import clients, verify_page
from stb_origin.oauth.verify_page import COOKIE
from stb_origin.scopes import ALL as SCOPES
from stb_origin.services import build_services
from stb_origin.settings import Settings
from stb_origin.web.openapi import build_document
from stb_origin.web.sessions import WebSession
from stb_origin.webhooks import deliveries, subscriptions
from stb_origin.webhooks.models import Delivery
from tests.conftest import REDIS_URL
from tests.drm.support import new_asset
from tests.origin.test_masters import MASTER
from tests.support.http import run_server

# Sidecar track bodies are the file itself, bytes as for any binary body.
schemathesis.serializer.alias(["audio/wav", "audio/aac", "audio/mp4", "application/x-subrip",
                               "image/jpeg", "image/png"], "application/octet-stream")
# tus PATCH bodies (and creation-with-upload) are bytes too.
schemathesis.serializer.alias(["application/offset+octet-stream"], "application/octet-stream")
SCHEMA = schemathesis.openapi.from_dict(build_document())
# Bounded and repeatable: the same cases on every run, none kept between runs.
SCHEMA.config.generation.update(max_examples=25, deterministic=True, database="none")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance,
          # a method a path lacks: 405, with the path's methods in Allow
          unsupported_method, allow_header_conformance]
SEGMENT = "v1/720p/seg0.m4s"
# The head of an MP4: enough for the upload to be taken (and queued; no worker runs here).
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@dataclass(frozen=True)
class World:
    base_url: str
    operator: str  # the CLI's token: every scope
    admin: str  # an admin user's token: every scope
    account: str  # a subscriber's token for their own account
    box: str  # a playback token bound to the subscriber's entitled box
    ids: dict[str, str]  # path parameter or body field -> a real value
    spare_device: str  # revoked by the revoke operation, never the box
    doomed_asset: str  # deleted by the delete operation, never the played one
    doomed_channel: str  # likewise for channels
    doomed_title: str  # likewise for catalog titles
    public_client: str
    confidential_client: tuple[str, str]
    signed_in_page: Callable[[], WebSession]  # the admin on /device


def _world(services: Any, base_url: str) -> World:
    asset, key = new_asset(services)
    doomed, _ = new_asset(services)
    storage = services.storage
    storage.put_bytes(f"hls/{asset}/master.m3u8", MASTER, "application/vnd.apple.mpegurl")
    storage.put_bytes(f"hls/{asset}/{SEGMENT}", secrets.token_bytes(4096), "video/iso.segment")
    with services.db.session() as session:
        admin = users.create_user(session, "admin@example.com", role=Role.ADMIN)
        subscriber = users.create_user(session, "viewer@example.com")
        box = devices.register_device(session, subscriber.account_id, "SN-1", "Box",
                                      Capabilities(), max_devices=5)
        spare = devices.register_device(session, subscriber.account_id, "SN-2", "Box",
                                        Capabilities(), max_devices=5)
        packages.create_package(session, "premium")
        packages.add_asset(session, "premium", asset)
        channel, doomed_channel = new_id(), new_id()
        for made in (channel, doomed_channel):
            session.add(Channel(id=made, name="News", sources=["udp://127.0.0.1:5000"],
                                ladder="auto"))
        session.flush()
        packages.set_channel_packages(session, channel, ["premium"])
        entitlement = entitlements.grant(session, subscriber.account_id, "premium")
        # A title the box sees: a ready asset of its own in the package.
        shown = new_id()
        session.add(Asset(id=shown, title="film", status="ready",
                          source_key=f"sources/{shown}/source.mp4", renditions=[{
                              "type": "video", "name": "720p", "width": 1280, "height": 720,
                              "codecs": "avc1.64001f,mp4a.40.2", "bandwidth": 3_000_000,
                              "average_bandwidth": 2_500_000, "segment_count": 3}]))
        session.flush()
        packages.add_asset(session, "premium", shown)
        titles.put_genre(session, "drama", "Drama")
        title = titles.create_title(session, TitleFields(
            given={"genres"}, kind="movie", name="Film", genres=["drama"]))
        titles.link_asset(session, title.id, shown, "main")
        doomed_title = titles.create_title(session, TitleFields(kind="movie", name="Gone"))
        public, _ = clients.create_client(session, "Box", "public", ["playback", "account"],
                                          client_id="stb-box")
        partner, secret = clients.create_client(session, "Partner", "confidential", SCOPES)
        assert secret is not None
        admin_id = admin.id
        webhook, _secret = subscriptions.create(session, services.envelope,
                                                "https://hooks.example.com/in",
                                                ["asset.ready"], True)
        deliveries.add(session, [deliveries.NewDelivery(webhook.id, "1-0", "asset.ready",
                                                        "{}")], webhook.created_at)
        delivery_id = session.scalars(select(Delivery.id)).one()
        ids = {"asset_id": asset, "key_id": key.key_id, "user_id": subscriber.id,
               "device_id": box.id, "name": "premium", "entitlement_id": entitlement.id,
               "asset": asset, "account": subscriber.account_id, "package": "premium",
               "channel_id": channel, "channel": channel, "title_id": title.id, "slug": "drama",
               "webhook_id": webhook.id, "delivery_id": delivery_id}
        world = World(
            base_url=base_url, operator=services.signer.issue(SCOPES),
            admin=services.signer.issue(SCOPES, subject=admin.id),
            account=services.signer.issue(["account"], subject=subscriber.id),
            box=services.signer.issue(["playback"], subject=subscriber.id, device_id=box.id),
            ids=ids, spare_device=spare.id, doomed_asset=doomed, doomed_channel=doomed_channel,
            doomed_title=doomed_title.id,
            public_client=public.id,
            confidential_client=(partner.id, secret),
            signed_in_page=lambda: verify_page.sessions(services.redis).new_session(admin_id))
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    data_dir: Path = tmp_path_factory.mktemp("contract") / "data"
    settings = Settings(data_dir=data_dir, redis_url=REDIS_URL,
                        queue_name=f"pipeline-{secrets.token_hex(4)}")
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        with run_server(create_app(services)) as base_url:
            yield _world(services, base_url)
    finally:
        services.close()
        redis.flushdb()
        redis.close()


def _draw(case: Case) -> int:
    """A number from what was generated: picks stay the same from run to run."""
    return zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode()) % 8


def _token(world: World, path: str) -> str | None:
    if path.startswith("/v1/assets"):
        return world.operator
    if path.startswith(("/keys/", "/v1/playback/", "/v1/activity", "/v1/titles")):
        return world.box
    if path.startswith("/v1/devices"):
        return world.account
    if path.startswith("/v1/"):
        return world.admin
    return None


def _real_objects(case: Case, world: World) -> None:
    path, method = case.operation.path, case.method.upper()
    params = case.path_parameters or {}
    for name in params:
        if name in world.ids:
            params[name] = world.ids[name]
    if path == "/v1/assets/{asset_id}" and method == "DELETE":
        params["asset_id"] = world.doomed_asset
    if path == "/v1/channels/{channel_id}" and method == "DELETE":
        params["channel_id"] = world.doomed_channel
    if path == "/v1/catalog/titles/{title_id}" and method == "DELETE":
        params["title_id"] = world.doomed_title
    if path == "/v1/devices/{device_id}/revoke":
        params["device_id"] = world.spare_device
    if path.startswith("/hls/") and "path" in params:
        params["path"] = SEGMENT if "Range" in (case.headers or {}) else "master.m3u8"
    if isinstance(case.body, dict):
        for name in case.body.keys() & {"asset", "account", "package", "channel"}:
            case.body[name] = world.ids[name]
        if path == "/v1/assets":
            file = case.body.get("file")
            if isinstance(file, str | bytes):  # not in the cases that send a wrong type
                case.body["file"] = MP4_HEAD + (file.encode() if isinstance(file, str) else file)
        if path == "/device":
            page = world.signed_in_page()
            case.cookies = {**(case.cookies or {}), COOKIE: page.cookie}
            case.body["csrf_token"] = page.csrf_token


def _credentials(case: Case, world: World) -> None:
    path = case.operation.path
    token = _token(world, path)
    if token is not None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    if isinstance(case.body, dict) and path.startswith("/oauth/"):
        if case.body.get("grant_type") == "client_credentials" or path == "/oauth/revoke":
            case.body["client_id"], case.body["client_secret"] = world.confidential_client
        else:  # the box's grants
            case.body["client_id"] = world.public_client
            case.body.pop("client_secret", None)


def _prepare(case: Case, world: World) -> None:
    draw = _draw(case)
    if draw < 4:  # half: real objects
        _real_objects(case, world)
    if draw != 7:  # one in eight: no credentials at all
        _credentials(case, world)


@SCHEMA.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_the_document_lists(case: Case, world: World) -> None:
    _prepare(case, world)
    case.call_and_validate(base_url=world.base_url, checks=CHECKS, timeout=30)
