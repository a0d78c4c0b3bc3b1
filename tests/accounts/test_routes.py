"""The accounts API over real HTTP: who may do what, pagination, and every refusal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stb_origin.accounts import users
from stb_origin.accounts.entitlements import is_entitled
from stb_origin.accounts.models import Role
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id
from stb_origin.services import Services

BOX = {"serial": "SN-0001", "model": "Box 4K",
       "capabilities": {"max_width": 3840, "max_height": 2160, "codecs": ["avc1.640028", "hvc1"],
                        "video_ranges": ["PQ", "HLG"]}}


@dataclass
class Person:
    id: str
    account: str
    token: str


def _call(api: str, method: str, path: str, token: str | None = None, **kwargs: Any
          ) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, api + path, headers=headers, timeout=10, **kwargs)


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


def _person(services: Services, email: str, role: Role = Role.SUBSCRIBER,
            account: str | None = None, scopes: tuple[str, ...] = ("account",),
            device_id: str | None = None) -> Person:
    with services.db.session() as session:
        user = users.create_user(session, email, role=role, account_id=account)
    token = services.signer.issue(scopes, subject=user.id, device_id=device_id)
    return Person(user.id, user.account_id, token)


@pytest.fixture
def operator(services: Services) -> str:
    return services.signer.issue(["admin"])


@pytest.fixture
def admin(services: Services) -> Person:
    return _person(services, "admin@example.com", Role.ADMIN, scopes=("admin", "account"))


@pytest.fixture
def alice(services: Services) -> Person:
    return _person(services, "alice@example.com")


@pytest.fixture
def bob(services: Services) -> Person:
    return _person(services, "bob@example.com")


@pytest.fixture
def asset_id(services: Services) -> str:
    with services.db.session() as session:
        asset = Asset(id=new_id(), title="film", source_key="sources/x/source.mp4")
        session.add(asset)
    return asset.id


def _walk(api: str, path: str, token: str) -> Iterator[dict[str, Any]]:
    url: str | None = path
    while url:
        response = _call(api, "GET", url, token)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        page = response.json()
        yield from page["items"]
        url = page["next"]


# --- users ------------------------------------------------------------------------

def test_the_operator_bootstraps_an_admin_who_adds_users(api, services, operator, caplog):
    with caplog.at_level(logging.DEBUG):
        created = _call(api, "POST", "/v1/users", operator, json={
            "email": "Root@Example.com", "role": "admin", "password": "a long passphrase"})
    assert created.status_code == 201, created.text
    root = created.json()
    assert created.headers["location"] == f"/v1/users/{root['id']}"
    assert root["email"] == "root@example.com" and root["role"] == "admin"
    assert root["has_password"] is True
    assert not any("pass" in key for key in root if key != "has_password")
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records
                       if not r.name.startswith(("httpx", "httpcore")))
    assert "user created" in logged and "a long passphrase" not in logged

    root_token = services.signer.issue(["admin"], subject=root["id"])
    subscriber = _call(api, "POST", "/v1/users", root_token,
                       json={"email": "viewer@example.com", "name": "Viewer"})
    assert subscriber.status_code == 201
    body = subscriber.json()
    assert body["role"] == "subscriber" and body["has_password"] is False
    assert body["account"] != root["account"], "a new user gets a new account"
    member = _call(api, "POST", "/v1/users", root_token,
                   json={"email": "kid@example.com", "account": body["account"]})
    assert member.status_code == 201 and member.json()["account"] == body["account"]

    got = _call(api, "GET", f"/v1/users/{body['id']}", root_token)
    assert got.status_code == 200 and got.json() == body


def test_users_are_listed_newest_first_page_by_page(api, services, admin):
    household = _person(services, "h0@example.com")
    emails = [f"h{n}@example.com" for n in range(5)]
    for email in emails[1:]:
        _person(services, email, account=household.account)
    _person(services, "elsewhere@example.com")
    listed = [u["email"] for u in _walk(api, f"/v1/users?limit=2&account={household.account}",
                                        admin.token)]
    assert listed == list(reversed(emails))
    everyone = [u["email"] for u in _walk(api, "/v1/users?limit=3", admin.token)]
    assert len(everyone) == len(set(everyone)) == 7


def test_a_user_sees_their_household_but_no_one_else(api, services, alice, bob):
    partner = _person(services, "partner@example.com", account=alice.account)
    assert _call(api, "GET", f"/v1/users/{alice.id}", alice.token).status_code == 200
    assert _call(api, "GET", f"/v1/users/{partner.id}", alice.token).status_code == 200
    _error(_call(api, "GET", f"/v1/users/{bob.id}", alice.token), 403, "forbidden")
    _error(_call(api, "GET", "/v1/users", alice.token), 403, "insufficient_scope")


def test_duplicate_emails_and_unknown_accounts(api, admin, alice):
    _error(_call(api, "POST", "/v1/users", admin.token, json={"email": "ALICE@example.com"}),
           409, "already_exists")
    _error(_call(api, "POST", "/v1/users", admin.token,
                 json={"email": "new@example.com", "account": "f" * 32}), 404, "not_found")


# --- devices --------------------------------------------------------------------

def test_a_subscriber_registers_lists_and_revokes_their_boxes(api, services, alice):
    created = _call(api, "POST", "/v1/devices", alice.token, json=BOX)
    assert created.status_code == 201, created.text
    device = created.json()
    assert created.headers["location"] == f"/v1/devices/{device['id']}"
    assert device["account"] == alice.account and device["state"] == "active"
    assert device["capabilities"] == {**BOX["capabilities"]}
    assert device["last_seen_at"] is not None and device["revoked_at"] is None

    again = _call(api, "POST", "/v1/devices", alice.token, json=BOX)
    assert again.status_code == 200 and again.json()["id"] == device["id"]

    second = _call(api, "POST", "/v1/devices", alice.token,
                   json={"serial": "SN-0002", "model": "Box HD"}).json()
    assert second["capabilities"] == {"max_width": None, "max_height": None, "codecs": [],
                                      "video_ranges": []}
    listed = [d["id"] for d in _walk(api, "/v1/devices?limit=1", alice.token)]
    assert listed == [second["id"], device["id"]]

    revoked = _call(api, "POST", f"/v1/devices/{device['id']}/revoke", alice.token)
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked" and revoked.json()["revoked_at"]
    got = _call(api, "GET", f"/v1/devices/{device['id']}", alice.token).json()
    assert got["state"] == "revoked"


def test_the_device_limit_answers_409(api, services, alice):
    services.settings = services.settings.with_(max_devices_per_account=2)
    for n in range(2):
        assert _call(api, "POST", "/v1/devices", alice.token,
                     json={**BOX, "serial": f"SN-{n}"}).status_code == 201
    message = _error(_call(api, "POST", "/v1/devices", alice.token,
                           json={**BOX, "serial": "SN-2"}), 409, "device_limit_reached")
    assert "2 active devices" in message
    first = next(_walk(api, "/v1/devices", alice.token))
    _call(api, "POST", f"/v1/devices/{first['id']}/revoke", alice.token)
    assert _call(api, "POST", "/v1/devices", alice.token,
                 json={**BOX, "serial": "SN-2"}).status_code == 201


def test_others_devices_are_403_but_an_admin_may_act(api, services, alice, bob, admin):
    device = _call(api, "POST", "/v1/devices", alice.token, json=BOX).json()
    path = f"/v1/devices/{device['id']}"
    _error(_call(api, "GET", path, bob.token), 403, "forbidden")
    _error(_call(api, "POST", path + "/revoke", bob.token), 403, "forbidden")
    _error(_call(api, "GET", f"/v1/devices?account={alice.account}", bob.token), 403,
           "forbidden")
    _error(_call(api, "POST", "/v1/devices", bob.token, json={**BOX, "account": alice.account}),
           403, "forbidden")
    assert list(_walk(api, "/v1/devices", bob.token)) == []

    _call(api, "POST", "/v1/devices", bob.token, json={**BOX, "serial": "SN-BOB"})
    everyone = list(_walk(api, "/v1/devices", admin.token))
    assert {d["account"] for d in everyone} == {alice.account, bob.account}
    only_alice = list(_walk(api, f"/v1/devices?account={alice.account}&limit=1", admin.token))
    assert [d["id"] for d in only_alice] == [device["id"]]
    assert _call(api, "POST", path + "/revoke", admin.token).json()["state"] == "revoked"
    # An admin registers a box for an account (support desk).
    for_bob = _call(api, "POST", "/v1/devices", admin.token,
                    json={**BOX, "serial": "SN-DESK", "account": bob.account})
    assert for_bob.status_code == 201 and for_bob.json()["account"] == bob.account


def test_a_token_of_a_revoked_device_stops_working(api, services, alice):
    device = _call(api, "POST", "/v1/devices", alice.token, json=BOX).json()
    box_token = services.signer.issue(["account"], subject=alice.id, device_id=device["id"])
    assert _call(api, "GET", "/v1/devices", box_token).status_code == 200
    _call(api, "POST", f"/v1/devices/{device['id']}/revoke", alice.token)
    message = _error(_call(api, "GET", "/v1/devices", box_token), 401, "invalid_token")
    assert "revoked" in message
    assert _call(api, "GET", "/v1/devices", alice.token).status_code == 200


def test_a_revoked_device_is_refused_even_where_devices_are_not_looked_up(api, services,
                                                                          alice):
    device = _call(api, "POST", "/v1/devices", alice.token, json=BOX).json()
    # /v1/assets checks the token's scope only: the deny-list is what stops it.
    box_token = services.signer.issue(["assets:read"], subject=alice.id,
                                      device_id=device["id"])
    assert _call(api, "GET", "/v1/assets", box_token).status_code == 200
    _call(api, "POST", f"/v1/devices/{device['id']}/revoke", alice.token)
    assert "revoked" in _error(_call(api, "GET", "/v1/assets", box_token), 401, "invalid_token")


# --- packages and entitlements ----------------------------------------------------

def test_packages_entitlements_and_what_they_grant(api, services, admin, alice, asset_id):
    created = _call(api, "POST", "/v1/packages", admin.token,
                    json={"name": "premium", "title": "Premium"})
    assert created.status_code == 201 and created.headers["location"] == "/v1/packages/premium"
    _error(_call(api, "POST", "/v1/packages", admin.token, json={"name": "premium"}),
           409, "already_exists")
    added = _call(api, "POST", "/v1/packages/premium/assets", admin.token,
                  json={"asset": asset_id})
    assert added.status_code == 201 and added.json()["asset"] == asset_id
    assert _call(api, "POST", "/v1/packages/premium/assets", admin.token,
                 json={"asset": asset_id}).status_code == 200
    assert [a["asset"] for a in _walk(api, "/v1/packages/premium/assets", admin.token)] == [
        asset_id]
    assert _call(api, "GET", "/v1/packages/premium", admin.token).json()["title"] == "Premium"

    start = datetime(2030, 1, 1, tzinfo=UTC)
    granted = _call(api, "POST", "/v1/entitlements", admin.token, json={
        "account": alice.account, "package": "premium",
        "valid_from": "2030-01-01T00:00:00Z", "valid_until": "2030-02-01T01:00:00+01:00"})
    assert granted.status_code == 201, granted.text
    entitlement = granted.json()
    assert entitlement["valid_until"] == "2030-02-01T00:00:00+00:00"
    assert granted.headers["location"] == f"/v1/entitlements/{entitlement['id']}"
    with services.db.session() as session:
        assert is_entitled(session, alice.account, asset_id, start + timedelta(days=3))
        assert not is_entitled(session, alice.account, asset_id, start + timedelta(days=31))

    mine = list(_walk(api, "/v1/entitlements", alice.token))
    assert mine == [entitlement]
    got = _call(api, "GET", f"/v1/entitlements/{entitlement['id']}", alice.token)
    assert got.json() == entitlement

    removed = _call(api, "DELETE", f"/v1/packages/premium/assets/{asset_id}", admin.token)
    assert removed.status_code == 204
    _error(_call(api, "DELETE", f"/v1/packages/premium/assets/{asset_id}", admin.token),
           404, "not_found")
    with services.db.session() as session:
        assert not is_entitled(session, alice.account, asset_id, start + timedelta(days=3))


def test_packages_are_listed_by_name(api, admin):
    for name in ("sports", "basic", "kids"):
        _call(api, "POST", "/v1/packages", admin.token, json={"name": name})
    names = [p["name"] for p in _walk(api, "/v1/packages?limit=2", admin.token)]
    assert names == ["basic", "kids", "sports"]


def test_entitlements_of_others_stay_private(api, services, admin, alice, bob):
    _call(api, "POST", "/v1/packages", admin.token, json={"name": "basic"})
    granted = _call(api, "POST", "/v1/entitlements", admin.token,
                    json={"account": alice.account, "package": "basic"}).json()
    _error(_call(api, "GET", f"/v1/entitlements/{granted['id']}", bob.token), 403, "forbidden")
    _error(_call(api, "GET", f"/v1/entitlements?account={alice.account}", bob.token), 403,
           "forbidden")
    assert list(_walk(api, "/v1/entitlements", bob.token)) == []
    assert len(list(_walk(api, f"/v1/entitlements?account={alice.account}", admin.token))) == 1


def test_unknown_references_in_entitlements_are_404(api, admin, alice, asset_id):
    _error(_call(api, "POST", "/v1/entitlements", admin.token,
                 json={"account": alice.account, "package": "gold"}), 404, "not_found")
    _error(_call(api, "POST", "/v1/packages/gold/assets", admin.token,
                 json={"asset": asset_id}), 404, "not_found")
    _call(api, "POST", "/v1/packages", admin.token, json={"name": "gold"})
    _error(_call(api, "POST", "/v1/packages/gold/assets", admin.token,
                 json={"asset": "0" * 32}), 404, "not_found")


# --- refusals -----------------------------------------------------------------------
# One server per test, a subtest per case: the matrices stay cheap to run.

ROUTES = [
    ("POST", "/v1/users"), ("GET", "/v1/users"), ("GET", "/v1/users/ID"),
    ("POST", "/v1/devices"), ("GET", "/v1/devices"), ("GET", "/v1/devices/ID"),
    ("POST", "/v1/devices/ID/revoke"),
    ("POST", "/v1/packages"), ("GET", "/v1/packages"), ("GET", "/v1/packages/premium"),
    ("POST", "/v1/packages/premium/assets"), ("GET", "/v1/packages/premium/assets"),
    ("DELETE", "/v1/packages/premium/assets/ID"),
    ("POST", "/v1/entitlements"), ("GET", "/v1/entitlements"), ("GET", "/v1/entitlements/ID"),
]
ADMIN_ONLY = [r for r in ROUTES if "/packages" in r[1] or r in (
    ("POST", "/v1/users"), ("GET", "/v1/users"), ("POST", "/v1/entitlements"))]


def test_every_route_needs_a_valid_token(api, services, subtests):
    expired = services.signer.issue(["admin", "account"], ttl_s=-300)
    player = services.signer.issue(["playback", "assets:read", "assets:write"])
    for method, path in ROUTES:
        path = path.replace("ID", "0" * 32)
        with subtests.test(method=method, path=path):
            response = _call(api, method, path, json={})
            _error(response, 401, "unauthorized")
            assert "www-authenticate" in response.headers
            assert response.headers["cache-control"] == "no-store"
            _error(_call(api, method, path, "not-a-jwt", json={}), 401, "invalid_token")
            _error(_call(api, method, path, expired, json={}), 401, "invalid_token")
            _error(_call(api, method, path, player, json={}), 403, "insufficient_scope")


def test_admin_routes_need_an_admin_behind_the_scope(api, services, alice, subtests):
    editor = _person(services, "ed@example.com", Role.EDITOR, scopes=("admin", "account"))
    posing = _person(services, "sub@example.com", scopes=("admin", "account"))
    for method, path in ADMIN_ONLY:
        path = path.replace("ID", "0" * 32)
        with subtests.test(method=method, path=path):
            _error(_call(api, method, path, alice.token, json={}), 403, "insufficient_scope")
            for token in (editor.token, posing.token):
                # Refused before the body is even looked at.
                _error(_call(api, method, path, token, json={"bogus": 1}), 403, "forbidden")


def test_tokens_of_unknown_users_are_401(api, services):
    ghost = services.signer.issue(["account", "admin"], subject=new_id())
    message = _error(_call(api, "GET", "/v1/devices", ghost), 401, "invalid_token")
    assert "user" in message


def test_operator_tokens_have_no_account(api, services):
    operator = services.signer.issue(["account"])
    _error(_call(api, "GET", "/v1/devices", operator), 403, "forbidden")
    _error(_call(api, "POST", "/v1/devices", operator, json=BOX), 403, "forbidden")
    admin_operator = services.signer.issue(["admin"])
    message = _error(_call(api, "POST", "/v1/devices", admin_operator, json=BOX), 400,
                     "bad_request")
    assert "account" in message


def test_unknown_ids_are_404(api, admin, subtests):
    for method, path, what in [
        ("GET", "/v1/users/ID", "user"), ("GET", "/v1/devices/ID", "device"),
        ("POST", "/v1/devices/ID/revoke", "device"),
        ("GET", "/v1/entitlements/ID", "entitlement"), ("GET", "/v1/users/not-an-id", "user"),
        ("GET", "/v1/devices/..%2f..%2fetc", ""), ("GET", "/v1/packages/gold", "package"),
        ("GET", "/v1/packages/gold/assets", "package"),
    ]:
        with subtests.test(method=method, path=path):
            response = _call(api, method, path.replace("ID", "0" * 32), admin.token)
            assert what in _error(response, 404, "not_found")


def test_bad_page_parameters_are_400(api, admin, subtests):
    for query, message in [("limit=0", "limit"), ("limit=101", "limit"),
                           ("limit=ten", "limit"), (f"after={'0' * 32}", "after")]:
        for path in ("/v1/users", "/v1/devices", "/v1/entitlements"):
            with subtests.test(path=path, query=query):
                response = _call(api, "GET", f"{path}?{query}", admin.token)
                assert message in _error(response, 400, "bad_request")


def test_bad_device_bodies_are_400_with_a_clear_message(api, alice, subtests):
    for content, message in [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"serial": NaN, "model": "Box"}', "not valid JSON"),
        (b"[" * 50_000, "not valid JSON"),
        (b'["SN-1", "Box"]', "must be a JSON object"),
        (b'{"serial": 42, "model": "Box"}', "serial: expected a string"),
        (b'{"serial": "SN-1", "model": ["Box"]}', "model: expected a string"),
        (b'{"model": "Box"}',
         'missing required field "serial"; allowed: account, capabilities, model, serial'),
        (b'{"serial": null, "model": "Box"}', 'field "serial" is required and may not be null'),
        (b'{"serial": "SN-1", "model": "Box", "colour": "red"}',
         'unknown field "colour"; allowed: account, capabilities, model, serial'),
        (b'{"serial": "SN-1", "model": "Box", "colour": "red", "size": 1}',
         'unknown fields "colour", "size"; allowed: account, capabilities, model, serial'),
        (b'{"serial": "SN 1", "model": "Box"}', "serial:"),
        (b'{"serial": "SN-1", "model": "Box", "capabilities": {"max_height": "4k"}}',
         "capabilities.max_height"),
        (b'{"serial": "SN-1", "model": "Box", "capabilities": ["avc1"]}',
         "capabilities: expected an object"),
        (b'{"serial": "SN-1", "model": "Box", "capabilities": []}',
         "capabilities: expected an object"),
    ]:
        with subtests.test(body=content[:60]):
            response = _call(api, "POST", "/v1/devices", alice.token, content=content,
                             headers={"Content-Type": "application/json"})
            assert message in _error(response, 400, "bad_request")
    assert list(_walk(api, "/v1/devices", alice.token)) == []


def test_bad_users_are_400(api, admin, subtests):
    for body, message in [
        ({"email": 7}, "email: expected a string"),
        ({"email": "nobody"}, "email"),
        ({"email": "x@example.com", "role": "root"}, "role"),
        ({"email": "x@example.com", "role": ["admin"]}, "role: expected a string"),
        ({"email": "x@example.com", "password": "short"}, "8 to 1024"),
        ({"name": "no email"},
         'missing required field "email"; allowed: account, email, name, password, role'),
    ]:
        with subtests.test(body=body):
            response = _call(api, "POST", "/v1/users", admin.token, json=body)
            assert message in _error(response, 400, "bad_request")


def test_bad_entitlements_are_400(api, admin, alice, subtests):
    _call(api, "POST", "/v1/packages", admin.token, json={"name": "basic"})
    grant = {"account": alice.account, "package": "basic"}
    for body, message in [
        ({**grant, "valid_from": "yesterday"}, "valid_from"),
        ({**grant, "valid_from": "2030-01-01T00:00:00"}, "with an offset"),
        ({**grant, "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"},
         "after valid_from"),
        ({**grant, "valid_untill": "2030-01-01T00:00:00Z"},
         'unknown field "valid_untill"; allowed: account, package, valid_from, valid_until'),
        ({"account": alice.account},
         'missing required field "package"; allowed: account, package, valid_from, valid_until'),
        ({**grant, "account": 12}, "account: expected a string"),
    ]:
        with subtests.test(body=body):
            response = _call(api, "POST", "/v1/entitlements", admin.token, json=body)
            assert message in _error(response, 400, "bad_request")
    assert list(_walk(api, "/v1/entitlements", admin.token)) == []


def test_bad_package_bodies_are_400(api, admin, subtests):
    for body, message in [({"name": "Premium Tier"}, "name:"), ({"name": 5}, "name:"),
                          ({"title": "no name"},
                           'missing required field "name"; allowed: name, title')]:
        with subtests.test(body=body):
            response = _call(api, "POST", "/v1/packages", admin.token, json=body)
            assert message in _error(response, 400, "bad_request")


def test_adding_an_asset_by_the_wrong_field_names_the_right_one(api, admin, asset_id):
    _call(api, "POST", "/v1/packages", admin.token, json={"name": "basic"})
    response = _call(api, "POST", "/v1/packages/basic/assets", admin.token,
                     json={"asset_id": asset_id})
    assert _error(response, 400, "bad_request") == 'unknown field "asset_id"; allowed: asset'
    response = _call(api, "POST", "/v1/packages/basic/assets", admin.token, json={})
    assert _error(response, 400, "bad_request") == 'missing required field "asset"; allowed: asset'


def test_bodies_must_be_json(api, alice):
    response = _call(api, "POST", "/v1/devices", alice.token, data={"serial": "SN-1"})
    _error(response, 415, "unsupported_media_type")


def test_huge_bodies_are_refused_declared_or_streamed(api, alice):
    huge = b'{"serial": "SN-1", "model": "' + b"x" * 200_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold while the body streams.
        for start in range(0, len(huge), 16_384):
            yield huge[start:start + 16_384]

    json_type = {"Content-Type": "application/json"}
    for content in (huge, chunks()):
        response = _call(api, "POST", "/v1/devices", alice.token, content=content,
                         headers=json_type)
        _error(response, 413, "payload_too_large")
    assert list(_walk(api, "/v1/devices", alice.token)) == []
