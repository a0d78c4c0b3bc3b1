"""The key path's cached copies, across processes: two apps over one Redis and one
database, each with its own copies. A change made through one is honoured by
the other on its very next fetch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from stb_origin.accounts import entitlements, packages
from stb_origin.app import create_app
from stb_origin.auth import denylist
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore
from stb_origin.drm.auditwriter import AuditWriter
from stb_origin.drm.delivery import COPY_TTL_S, KeyDelivery
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.services import Services, build_services
from tests.drm.support import Box, household, new_asset, revoke
from tests.support.http import run_server

PACKAGE = "gold"


@pytest.fixture
def other(services: Services) -> Iterator[Services]:
    """A second process's services: same settings, its own copies and audit writer."""
    built = build_services(services.settings)
    yield built
    built.close()


@pytest.fixture
def app_b(other: Services) -> Starlette:
    return create_app(other)


@pytest.fixture
def api_b(app_b: Starlette) -> Iterator[str]:
    with run_server(app_b) as base_url:
        yield base_url


@pytest.fixture
def gold_box(services: Services, film: tuple[str, ContentKey]) -> Box:
    """A box entitled to the film through the package PACKAGE."""
    entitled = household(services)
    with services.db.session() as session:
        packages.create_package(session, PACKAGE)
        packages.add_asset(session, PACKAGE, film[0])
        entitlements.grant(session, entitled.account_id, PACKAGE)
    return entitled


def _key(api: str, film: tuple[str, ContentKey], token: str) -> httpx.Response:
    return httpx.get(f"{api}/keys/{film[0]}/{film[1].key_id}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _served(api: str, film: tuple[str, ContentKey], token: str) -> bool:
    response = _key(api, film, token)
    assert response.status_code in (200, 401, 403, 404), response.text
    return response.status_code == 200 and response.content == film[1].key


def _admin(services: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {services.signer.issue(['admin', 'assets:write'])}"}


def test_a_device_revoked_through_one_process_is_refused_by_another_at_once(
        api, api_b, services, film, gold_box):
    assert _served(api_b, film, gold_box.token)  # B keeps a copy of the box's device
    revoked = httpx.post(f"{api}/v1/devices/{gold_box.device_id}/revoke",
                         headers=_admin(services), timeout=10)
    assert revoked.status_code == 200
    assert _key(api_b, film, gold_box.token).status_code == 401  # the deny-list
    # Even with the deny-list entry gone, B's copy of the device is stale: the
    # account's stamp changed with the revocation.
    services.redis.delete(*denylist.names("-", gold_box.device_id)[1:])
    refused = _key(api_b, film, gold_box.token)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "device_revoked"


def test_an_asset_taken_out_of_the_package_is_refused_by_another_process_at_once(
        api, api_b, services, film, gold_box):
    assert _served(api_b, film, gold_box.token)
    removed = httpx.delete(f"{api}/v1/packages/{PACKAGE}/assets/{film[0]}",
                           headers=_admin(services), timeout=10)
    assert removed.status_code == 204
    refused = _key(api_b, film, gold_box.token)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_entitled"
    # And put back: served again at once, not after the copy's lifetime.
    added = httpx.post(f"{api}/v1/packages/{PACKAGE}/assets", json={"asset": film[0]},
                       headers=_admin(services), timeout=10)
    assert added.status_code == 201
    assert _served(api_b, film, gold_box.token)


def test_a_deleted_asset_has_no_keys_on_any_process(api, api_b, services, film, gold_box):
    operator = services.signer.issue(["playback"])
    assert _served(api_b, film, operator) and _served(api_b, film, gold_box.token)
    deleted = httpx.delete(f"{api}/v1/assets/{film[0]}", headers=_admin(services), timeout=10)
    assert deleted.status_code == 204
    assert _key(api_b, film, operator).status_code == 404  # the key copy is gone too
    assert _key(api_b, film, gold_box.token).status_code == 403


def test_a_revoked_token_is_refused_by_every_process_at_once(api_b, services, film, gold_box):
    assert _served(api_b, film, gold_box.token)
    claims = services.signer.verify(gold_box.token)
    denylist.deny_token(services.redis, claims.token_id, claims.expires_at)
    response = _key(api_b, film, gold_box.token)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"


def test_a_new_entitlement_is_honoured_by_another_process_at_once(api, api_b, services, film):
    newcomer = household(services)
    assert _key(api_b, film, newcomer.token).status_code == 403  # B keeps "no entitlement"
    for path, body in (("/v1/packages", {"name": "silver"}),
                       ("/v1/packages/silver/assets", {"asset": film[0]})):
        assert httpx.post(api + path, json=body, headers=_admin(services),
                          timeout=10).status_code == 201
    granted = httpx.post(f"{api}/v1/entitlements", headers=_admin(services), timeout=10,
                         json={"account": newcomer.account_id, "package": "silver"})
    assert granted.status_code == 201
    assert _served(api_b, film, newcomer.token)


def test_an_entitlement_expires_on_time_with_a_warm_copy(api_b, app_b, services, film):
    box = household(services)
    ends = utcnow() + timedelta(hours=1)
    with services.db.session() as session:
        packages.create_package(session, "trial")
        packages.add_asset(session, "trial", film[0])
        entitlements.grant(session, box.account_id, "trial", valid_until=ends)
    assert _served(api_b, film, box.token)
    # Nothing changes anywhere; only time passes (B's clock, not the test's).
    app_b.state.key_delivery.now = lambda: ends + timedelta(seconds=1)
    refused = _key(api_b, film, box.token)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_entitled"


def test_a_change_made_behind_the_services_back_is_seen_once_the_copy_expires(
        other, film, gold_box):
    clock = [1000.0]
    app_b = create_app(other)
    app_b.state.key_delivery = KeyDelivery(
        other.signer, str(other.settings.redis_url), other.redis, other.db.engine,
        other.envelope, AuditWriter(other.db.engine), clock=lambda: clock[0])
    with run_server(app_b) as api_b:
        assert _served(api_b, film, gold_box.token)
        revoke(other, gold_box.device_id)  # in the database only: no stamp, no deny-list
        clock[0] += COPY_TTL_S
        refused = _key(api_b, film, gold_box.token)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "device_revoked"


def test_a_box_is_refused_while_redis_cannot_say_whether_it_is_revoked(other, film, gold_box):
    app_b = create_app(other)
    app_b.state.key_delivery = KeyDelivery(
        other.signer, "redis://127.0.0.1:1/0", other.redis,  # nobody listens there
        other.db.engine, other.envelope, AuditWriter(other.db.engine))
    with run_server(app_b) as api_b:
        response = _key(api_b, film, gold_box.token)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert film[1].key not in response.content


def test_new_asset_keys_are_found_without_a_new_stamp(api_b, services, film, gold_box):
    asset_id, _ = film
    assert _served(api_b, film, gold_box.token)
    # A key stored after the copy was made (a re-run job stores its keys before
    # the playlists naming them are published) must be found at once.
    later = generate_key()
    with services.db.session() as session:
        keystore.store(session, asset_id, [later], services.envelope)
    assert _served(api_b, (asset_id, later), gold_box.token)
    other_asset = new_asset(services)
    assert _key(api_b, other_asset, gold_box.token).status_code == 403
