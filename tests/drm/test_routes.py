"""Key delivery over real HTTP: only entitled boxes (and the operator) get the 16
bytes; every refusal is a 403 that is audited, counted and never cached."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from starlette.applications import Starlette

from stb_origin.accounts.devices import get_device
from stb_origin.accounts.models import Role
from stb_origin.db.types import utcnow
from stb_origin.drm import keystore
from stb_origin.drm.access import PREVIEW_CLIENT
from stb_origin.drm.audit import MAX_FORWARDED_FOR, KeyAudit
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.services import Services
from tests.drm.support import Box, entitle, household, new_asset, revoke
from tests.support.logs import captured

ASSET = "ab" * 16
PLAYER = "https://player.example.com"


@pytest.fixture
def stored_key(services):  # type: ignore[no-untyped-def]
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, ASSET, [key], services.envelope)
    return key


def _get(api: str, path: str, token: str | None = None, query: bool = False,
         headers: dict[str, str] | None = None) -> httpx.Response:
    sent = dict(headers or {})
    if token and not query:
        sent["Authorization"] = f"Bearer {token}"
    params = {"token": token} if token and query else None
    return httpx.get(api + path, headers=sent, params=params, timeout=10)


def _key_path(asset_id: str, key: ContentKey) -> str:
    return f"/keys/{asset_id}/{key.key_id}"


def _audit(app: Starlette, services: Services) -> list[KeyAudit]:
    app.state.key_delivery.audit.flush()  # the rows still waiting for their batch
    with services.db.session() as session:
        return list(session.scalars(select(KeyAudit).order_by(KeyAudit.created_at)))


def _refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("stb_key_refusals_total", {"reason": reason}) or 0.0


def _deliveries() -> float:
    return REGISTRY.get_sample_value("stb_key_deliveries_total") or 0.0


def _assert_refused(response: httpx.Response, status: int, code: str,
                    key: ContentKey) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.headers["cache-control"] == "private, no-store"
    assert key.key not in response.content


# -- who gets the key ------------------------------------------------------------------


@pytest.mark.parametrize("query", [False, True])
def test_playback_token_gets_exactly_the_key(api, services, stored_key, query):
    token = services.signer.issue(["playback"], device_id="box-1")
    response = _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token, query=query)
    assert response.status_code == 200
    assert response.content == stored_key.key and len(response.content) == 16
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["content-type"] == "application/octet-stream"


def test_an_entitled_box_gets_the_key_and_is_seen_and_audited(app, api, services, film, box):
    asset_id, key = film
    before = _deliveries()
    response = _get(api, _key_path(asset_id, key), box.token,
                    headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.2",
                             "X-Request-ID": "req-42"})
    assert response.status_code == 200 and response.content == key.key
    assert response.headers["cache-control"] == "private, no-store"
    assert _deliveries() == before + 1
    app.state.key_delivery.audit.flush()  # "seen" is written with the audit's batch
    with services.db.session() as session:
        device = get_device(session, box.device_id)
        assert device is not None and device.last_seen_at is not None
        assert utcnow() - device.last_seen_at < timedelta(minutes=1)

    [row] = _audit(app, services)
    assert row.to_json() | {"id": None, "at": None} == {
        "id": None, "at": None, "subject": box.user_id, "account": box.account_id,
        "device": box.device_id, "client": None, "asset": asset_id, "key_id": key.key_id,
        # uvicorn trusts 127.0.0.1 as a proxy: the peer is the last hop it names.
        "outcome": "delivered", "client_address": "10.0.0.2",
        "forwarded_for": "203.0.113.7, 10.0.0.2", "request_id": "req-42"}
    assert utcnow() - row.created_at < timedelta(minutes=1)


def test_key_fetches_past_the_router_answer_as_routed_requests_do(api, film, box):
    """drm.routes.KeyShortcut: logged, with the request id, HEAD and OPTIONS
    included; a method the route does not take is the router's 405."""
    asset_id, key = film
    path = _key_path(asset_id, key)
    with captured(logging.INFO) as logged:
        got = _get(api, path, box.token, headers={"X-Request-ID": "req-short"})
        assert got.status_code == 200 and got.content == key.key
        assert got.headers["x-request-id"] == "req-short"
        # Written once the answer has gone: waited for.
        line = logged.wait_for(msg="request", request_id="req-short")
    assert (line["status"], line["bytes"], line["route"], line["asset_id"]) == (
        200, 16, "keys", asset_id)

    head = httpx.head(api + path, headers={"Authorization": f"Bearer {box.token}"}, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "16"
    assert head.headers["cache-control"] == "private, no-store"

    refused = httpx.get(api + path, timeout=10)  # an ApiError, written as the handlers do
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["www-authenticate"].startswith("Bearer")

    for method in ("POST", "PUT", "DELETE"):
        other = httpx.request(method, api + path, headers={
            "Authorization": f"Bearer {box.token}"}, timeout=10)
        assert other.status_code == 405, method
        assert other.json()["error"]["code"] == "method_not_allowed"
        assert other.headers["allow"] == "GET, HEAD, OPTIONS"
        assert key.key not in other.content
    deeper = _get(api, path + "/more", box.token)
    assert deeper.status_code == 404 and deeper.json()["error"]["code"] == "not_found"


def test_an_entitlement_window_is_honoured_at_both_ends(api, services, film):
    asset_id, key = film
    now = utcnow()
    expired, future, current = household(services), household(services), household(services)
    entitle(services, expired.account_id, asset_id, now - timedelta(days=30),
            now - timedelta(seconds=1))
    entitle(services, future.account_id, asset_id, now + timedelta(hours=1))
    entitle(services, current.account_id, asset_id, now - timedelta(days=1),
            now + timedelta(days=1))
    for refused in (expired, future):
        _assert_refused(_get(api, _key_path(asset_id, key), refused.token), 403,
                        "not_entitled", key)
    assert _get(api, _key_path(asset_id, key), current.token).content == key.key


def test_admins_need_the_admin_scope_as_well_as_the_role(api, services, film):
    asset_id, key = film
    admin = household(services, role=Role.ADMIN, scopes=("playback", "admin"))
    unbound = services.signer.issue(["playback", "admin"], subject=admin.user_id)
    assert _get(api, _key_path(asset_id, key), unbound).content == key.key
    role_only = services.signer.issue(["playback"], subject=admin.user_id)
    _assert_refused(_get(api, _key_path(asset_id, key), role_only), 403, "no_device", key)
    subscriber = household(services)
    scope_only = services.signer.issue(["playback", "admin"], subject=subscriber.user_id)
    _assert_refused(_get(api, _key_path(asset_id, key), scope_only), 403, "no_device", key)


def test_an_editor_previews_through_a_console_token_for_that_asset_only(
        app, api, services, film):
    asset_id, key = film
    other_id, other_key = new_asset(services)
    editor = household(services, role=Role.EDITOR)

    def preview(subject: str, assets: list[str], client: str | None = PREVIEW_CLIENT,
                device: str | None = None) -> str:
        return services.signer.issue(["playback"], subject=subject, assets=assets,
                                     client_id=client, device_id=device)

    # No entitlement and no device: the console's preview token of the asset opens it.
    assert _get(api, _key_path(asset_id, key), preview(editor.user_id, [asset_id])).content \
        == key.key
    # ...and nothing else: another asset, or the same token shape without what makes it one.
    _assert_refused(_get(api, _key_path(other_id, other_key),
                         preview(editor.user_id, [asset_id])), 403, "wrong_asset", other_key)
    for token in (preview(editor.user_id, [asset_id], client=None),
                  preview(editor.user_id, [asset_id], client="cl-0123456789abcdef0123"),
                  services.signer.issue(["playback"], subject=editor.user_id,
                                        client_id=PREVIEW_CLIENT)):  # not asset-bound
        _assert_refused(_get(api, _key_path(asset_id, key), token), 403, "no_device", key)
    # A subscriber cannot preview, even with a token shaped like the console's.
    subscriber = household(services)
    _assert_refused(_get(api, _key_path(asset_id, key), preview(subscriber.user_id, [asset_id])),
                    403, "no_device", key)
    # A preview is audited under the console's client id.
    delivered = [row for row in _audit(app, services) if row.outcome == "delivered"]
    assert [(row.subject, row.client_id, row.device_id) for row in delivered] == [
        (editor.user_id, PREVIEW_CLIENT, None)]


# -- every refusal -----------------------------------------------------------------------


def _token_for_another_asset(services: Services, box: Box) -> str:
    other, _ = new_asset(services)
    entitle(services, box.account_id, other)
    return services.signer.issue(["playback"], subject=box.user_id, device_id=box.device_id,
                                 assets=[other])


def _revoked_box(services: Services, box: Box) -> str:
    revoke(services, box.device_id)
    return box.token


def _unknown_user(services: Services, box: Box) -> str:
    return services.signer.issue(["playback"], subject="f" * 32, device_id=box.device_id)


def _client_credentials(services: Services, box: Box) -> str:
    return services.signer.issue(["playback"], subject="c" * 32, client_id="c" * 32)


def _no_device(services: Services, box: Box) -> str:
    return services.signer.issue(["playback"], subject=box.user_id)


def _other_account_device(services: Services, box: Box) -> str:
    # A box of another household, with this user's id: not a device of their account.
    stranger = household(services)
    return services.signer.issue(["playback"], subject=box.user_id,
                                 device_id=stranger.device_id)


REFUSALS: dict[str, tuple[Any, str]] = {
    "token scoped to another asset": (_token_for_another_asset, "wrong_asset"),
    "revoked device": (_revoked_box, "device_revoked"),
    "device of another account": (_other_account_device, "device_revoked"),
    "unknown user": (_unknown_user, "unknown_user"),
    "client-credentials token": (_client_credentials, "not_a_user"),
    "user token without a device": (_no_device, "no_device"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_403_audited_and_counted(app, api, services, film, box, case):
    asset_id, key = film
    make_token, reason = REFUSALS[case]
    token = make_token(services, box)
    before = _refusals(reason)
    _assert_refused(_get(api, _key_path(asset_id, key), token), 403, reason, key)
    assert _refusals(reason) == before + 1
    [row] = _audit(app, services)
    assert (row.outcome, row.asset_id, row.key_id) == (reason, asset_id, key.key_id)


def test_keys_of_an_asset_the_account_is_not_entitled_to_are_403(app, api, services, film, box):
    other, other_key = new_asset(services)
    _assert_refused(_get(api, _key_path(other, other_key), box.token), 403, "not_entitled",
                    other_key)
    assert [r.outcome for r in _audit(app, services)] == ["not_entitled"]
    assert _audit(app, services)[0].account_id == box.account_id
    # The asset it is entitled to still works with the same token.
    assert _get(api, _key_path(*film), box.token).content == film[1].key


def test_an_operator_token_scoped_to_one_asset_gets_no_other(api, services, film):
    asset_id, key = film
    other, other_key = new_asset(services)
    token = services.signer.issue(["playback"], assets=[other])
    _assert_refused(_get(api, _key_path(asset_id, key), token), 403, "wrong_asset", key)
    assert _get(api, _key_path(other, other_key), token).content == other_key.key


def test_no_token_or_a_bad_one_is_401(app, api, services, stored_key):
    path = f"/keys/{ASSET}/{stored_key.key_id}"
    expired = services.signer.issue(["playback"], ttl_s=-300)
    for token in (None, "garbage", expired):
        response = _get(api, path, token)
        assert response.status_code == 401
        assert "no-store" in response.headers["cache-control"]
        assert stored_key.key not in response.content
    assert _audit(app, services) == []  # nobody to audit before the token is verified


def test_other_scopes_are_403(api, services, stored_key):
    token = services.signer.issue(["assets:write", "assets:read"])
    response = _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token)
    assert response.status_code == 403


@pytest.mark.parametrize("path", [
    f"/keys/{ASSET}/nokey",
    f"/keys/{'cd' * 16}/KEY",
    f"/keys/{ASSET}/..%2f..%2fetc%2fpasswd",
    "/keys/..%2f..%2fsecrets/kek",
    f"/keys/{ASSET}/{'a' * 65}",
])
def test_unknown_or_malformed_ids_are_404(app, api, services, stored_key, path):
    token = services.signer.issue(["playback"])
    response = _get(api, path.replace("KEY", stored_key.key_id), token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Audited when routed ('%2f' decodes to more path segments than a key has).
    assert {r.outcome for r in _audit(app, services)} <= {"not_found"}


# -- rate limit ----------------------------------------------------------------------------


def _start_of_a_window(window_s: int = 60, margin_s: float = 5) -> None:
    """Wait, rarely, until a burst of requests fits well inside one rate window."""
    left = window_s - time.time() % window_s
    if left < margin_s:
        time.sleep(left + 0.05)


def test_a_box_over_its_rate_is_told_to_wait(app, api, services, film, box):
    asset_id, key = film
    services.settings = services.settings.with_(key_requests_per_minute=3)
    neighbour = household(services)
    entitle(services, neighbour.account_id, asset_id)
    before = _refusals("rate_limited")
    _start_of_a_window()
    for _ in range(3):
        assert _get(api, _key_path(asset_id, key), box.token).status_code == 200
    for _ in range(2):
        limited = _get(api, _key_path(asset_id, key), box.token)
        _assert_refused(limited, 429, "rate_limited", key)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert _refusals("rate_limited") == before + 2
    # Counted per box: another one is not held back.
    assert _get(api, _key_path(asset_id, key), neighbour.token).content == key.key
    # A flood is audited once a window, not once a request.
    outcomes = [r.outcome for r in _audit(app, services)]
    assert outcomes.count("rate_limited") == 1 and outcomes.count("delivered") == 4


# -- CORS for web players ----------------------------------------------------------------


def test_allowed_web_players_may_send_credentials(api, services, film, box):
    asset_id, key = film
    services.settings = services.settings.with_(cors_origins=(PLAYER,))
    path = _key_path(asset_id, key)
    allowed = _get(api, path, box.token, headers={"Origin": PLAYER})
    assert allowed.content == key.key
    assert allowed.headers["access-control-allow-origin"] == PLAYER
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert allowed.headers["vary"] == "Origin"
    # Refusals too, so the player can read why.
    refused = _get(api, path, "garbage", headers={"Origin": PLAYER})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == PLAYER

    other = _get(api, path, box.token, headers={"Origin": "https://evil.example"})
    assert other.status_code == 200  # a browser would not let the page read it
    assert not any(h.startswith("access-control-") for h in other.headers)
    assert other.headers["vary"] == "Origin"


def test_preflight_allows_the_authorization_header_for_allowed_origins_only(api, services):
    services.settings = services.settings.with_(cors_origins=(PLAYER,))
    path = f"/keys/{ASSET}/k0"
    asked = {"Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization"}
    allowed = httpx.options(api + path, headers={"Origin": PLAYER, **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == PLAYER
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert "GET" in allowed.headers["access-control-allow-methods"]
    refused = httpx.options(api + path, headers={"Origin": "https://evil.example", **asked})
    assert not any(h.startswith("access-control-") for h in refused.headers)


# -- what must never leak ----------------------------------------------------------------


def test_keys_and_tokens_never_reach_the_logs_or_the_audit(app, api, services, film, box, caplog):
    asset_id, key = film
    other, other_key = new_asset(services)
    long_forwarded = ", ".join(["198.51.100.1"] * 100)
    with caplog.at_level(logging.DEBUG):
        for query in (True, False):
            assert _get(api, _key_path(asset_id, key), box.token, query=query).status_code == 200
            refused = _get(api, _key_path(other, other_key), box.token, query=query,
                           headers={"X-Forwarded-For": long_forwarded})
            assert refused.status_code == 403
    # Everything the server side logged (the test's own HTTP client is not the server).
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    assert "key delivered" in text and "key refused" in text
    assert box.token not in text
    for secret in (key.key, other_key.key):
        assert secret.hex() not in text and repr(secret) not in text
    rows = [str(r.to_json()) for r in _audit(app, services)]
    assert len(rows) == 4
    assert not any(box.token in row or key.key.hex() in row for row in rows)
    assert {len(r.forwarded_for or "") for r in _audit(app, services)} == {0, MAX_FORWARDED_FOR}


def test_keys_at_rest_are_wrapped(services, stored_key):
    with services.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT wrapped FROM content_keys").fetchall()
    assert rows and all(stored_key.key not in bytes(row[0]) for row in rows)
