"""RFC 8628 over HTTP: the box's requests, its polling, and every answer it can get."""

from __future__ import annotations

import logging

import httpx
import pytest

from stb_origin.accounts import devices
from stb_origin.oauth import device_flow
from stb_origin.oauth.models import DeviceAuthorization
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.oauth import conftest
from tests.oauth.conftest import (
    BOX_CLIENT,
    DEVICE_GRANT,
    Browser,
    FakeClock,
    Person,
    oauth_error,
    page_id,
    poll,
    sign_in_box,
    start_device_flow,
)

USER_CODE_LETTERS = set("BCDFGHJKLMNPQRSTVWXZ")


def test_device_authorization_answers_codes_and_where_to_go(
        http: httpx.Client, box_client: str, settings: Settings, services: Services) -> None:
    response = start_device_flow(http)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"device_code", "user_code", "verification_uri",
                         "verification_uri_complete", "expires_in", "interval"}
    assert len(body["device_code"]) >= 43  # 256 random bits, base64url
    user_code = body["user_code"]
    assert len(user_code) == 9 and user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= USER_CODE_LETTERS
    assert body["verification_uri"] == settings.public_base_url + "/device"
    assert body["verification_uri_complete"] == f"{body['verification_uri']}?user_code={user_code}"
    assert body["expires_in"] == settings.device_code_ttl_s
    assert body["interval"] == settings.device_poll_interval_s
    with services.db.session() as session:
        stored = session.query(DeviceAuthorization).one()
    # Only a hash of the device code is kept.
    assert stored.device_code_hash == device_flow.hash_device_code(body["device_code"])
    assert body["device_code"] not in repr(stored.__dict__)


def test_every_device_code_and_user_code_is_new(http: httpx.Client, box_client: str) -> None:
    answers = [start_device_flow(http).json() for _ in range(5)]
    assert len({a["device_code"] for a in answers}) == 5
    assert len({a["user_code"] for a in answers}) == 5


@pytest.mark.parametrize(("fields", "error", "status"), [
    ({"client_id": "no-such-client"}, "invalid_client", 400),
    ({"client_id": ""}, "invalid_client", 400),
    ({"scope": "playback assets:write"}, "invalid_scope", 400),
    ({"scope": "everything"}, "invalid_scope", 400),
    ({"device_serial": ""}, "invalid_request", 400),
    ({"device_serial": "not a serial!"}, "invalid_request", 400),
    ({"device_model": ""}, "invalid_request", 400),
    ({"device_capabilities": "{not json"}, "invalid_request", 400),
    ({"device_capabilities": '{"max_width": "wide"}'}, "invalid_request", 400),
    ({"device_capabilities": '{"colour": true}'}, "invalid_request", 400),
])
def test_device_authorization_refusals(http: httpx.Client, box_client: str,
                                       fields: dict[str, str], error: str, status: int) -> None:
    oauth_error(start_device_flow(http, **fields), error, status)


def test_device_authorization_refuses_a_confidential_client(
        http: httpx.Client, service_client) -> None:  # type: ignore[no-untyped-def]
    response = http.post("/oauth/device_authorization", auth=(service_client.client_id,
                                                              service_client.secret),
                         data={"device_serial": "SN-1", "device_model": "Box"})
    oauth_error(response, "unauthorized_client")


def test_device_authorization_needs_a_form_body(http: httpx.Client, box_client: str) -> None:
    response = http.post("/oauth/device_authorization", json={"client_id": BOX_CLIENT})
    oauth_error(response, "invalid_request")
    repeated = http.post("/oauth/device_authorization", content=b"client_id=stb-box&client_id=x",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert "more than once" in oauth_error(repeated, "invalid_request")


def test_scope_defaults_to_the_clients(http: httpx.Client, box_client: str, browser: Browser,
                                       clock: FakeClock, alice: Person) -> None:
    tokens = sign_in_box(http, browser, clock, alice.email, scope="")
    assert tokens["scope"] == "account playback"


def test_full_flow_gives_tokens_bound_to_user_device_and_client(
        http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person, services: Services) -> None:
    tokens = sign_in_box(http, browser, clock, alice.email)
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == services.settings.access_token_ttl_s
    assert tokens["scope"] == "account playback"
    claims = services.signer.verify(tokens["access_token"])
    assert claims.subject == alice.id
    assert claims.client_id == BOX_CLIENT
    assert claims.scopes == {"playback", "account"}
    with services.db.session() as session:
        device = devices.get_device(session, claims.device_id or "")
        assert device is not None
        assert (device.account_id, device.serial, device.model) == (alice.account, "SN-0001",
                                                                     "Box 4K")
        assert device.capabilities["max_width"] == 3840
    # The token works where the account scope is needed, for alice's account.
    listed = http.get("/v1/devices", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["items"]] == [claims.device_id]


def test_polling_before_the_user_answers_is_pending(
        http: httpx.Client, box_client: str, clock: FakeClock) -> None:
    codes = start_device_flow(http).json()
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")
    clock.advance(codes["interval"])
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")


def test_polling_too_fast_slows_the_box_down_by_five_seconds_each_time(
        http: httpx.Client, box_client: str, clock: FakeClock) -> None:
    codes = start_device_flow(http).json()
    interval = codes["interval"]
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")
    clock.advance(interval - 2)
    assert str(interval + 5) in oauth_error(poll(http, codes["device_code"]), "slow_down")
    # The old interval no longer suffices: the next poll must wait interval + 5.
    clock.advance(interval)
    oauth_error(poll(http, codes["device_code"]), "slow_down")
    clock.advance(interval + 10)
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")
    clock.advance(interval + 10 - 2)
    oauth_error(poll(http, codes["device_code"]), "slow_down")


def test_denied_request_answers_access_denied(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person) -> None:
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    assert page_id(browser.decide("deny")) == "page-denied"
    oauth_error(poll(http, codes["device_code"]), "access_denied")


def test_expired_code_answers_expired_token(
        http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person) -> None:
    codes = start_device_flow(http).json()
    clock.advance(codes["expires_in"])
    oauth_error(poll(http, codes["device_code"]), "expired_token")
    # Nor can the user approve it any more.
    browser.sign_in(alice.email)
    assert page_id(browser.enter_code(codes["user_code"])) == "page-enter-code"
    assert browser.page is not None and browser.page.status_code == 400


def test_code_expiring_on_the_confirmation_screen_is_not_approved(
        http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person, services: Services) -> None:
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    assert page_id(browser.enter_code(codes["user_code"])) == "page-confirm"
    clock.advance(codes["expires_in"])
    response = browser.decide("approve")
    assert (response.status_code, page_id(response)) == (410, "page-expired")
    with services.db.session() as session:
        assert devices.page_devices(session, 10, None, alice.account) == []
    oauth_error(poll(http, codes["device_code"]), "expired_token")


def test_device_code_is_single_use(http: httpx.Client, box_client: str, browser: Browser,
                                   clock: FakeClock, alice: Person) -> None:
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    browser.decide("approve")
    assert poll(http, codes["device_code"]).status_code == 200
    clock.advance(codes["interval"])
    assert "used already" in oauth_error(poll(http, codes["device_code"]), "invalid_grant")


@pytest.mark.parametrize("device_code", ["unknown", "x" * 2000])
def test_unknown_device_code_is_invalid_grant(http: httpx.Client, box_client: str,
                                              device_code: str) -> None:
    oauth_error(poll(http, device_code), "invalid_grant")


def test_device_code_of_another_client_is_invalid_grant(
        http: httpx.Client, box_client: str, services: Services) -> None:
    from stb_origin.oauth import clients

    with services.db.session() as session:
        clients.ensure_public_client(session, "other-box", "Other box", ["playback"])
    codes = start_device_flow(http).json()
    oauth_error(poll(http, codes["device_code"], client_id="other-box"), "invalid_grant")


def test_token_request_errors(http: httpx.Client, box_client: str) -> None:
    oauth_error(http.post("/oauth/token", data={"client_id": BOX_CLIENT}), "invalid_request")
    oauth_error(http.post("/oauth/token", data={"grant_type": DEVICE_GRANT,
                                                "client_id": BOX_CLIENT}), "invalid_request")
    oauth_error(http.post("/oauth/token", data={"grant_type": "password",
                                                "client_id": BOX_CLIENT}),
                "unsupported_grant_type")
    oauth_error(http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                "client_id": BOX_CLIENT}),
                "unauthorized_client")
    oauth_error(http.post("/oauth/token", data={"grant_type": DEVICE_GRANT,
                                                "device_code": "x"}), "invalid_client")
    oauth_error(http.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": "x",
                                                "client_id": "nobody"}), "invalid_client")
    # A public client has no secret to send.
    oauth_error(http.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": "x",
                                                "client_id": BOX_CLIENT,
                                                "client_secret": "guess"}), "invalid_client")


def test_device_limit_is_shown_and_nothing_is_approved(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person,
        services: Services) -> None:
    with services.db.session() as session:
        for n in range(services.settings.max_devices_per_account):
            devices.register_device(session, alice.account, f"OLD-{n}", "Old box",
                                    devices.Capabilities(), max_devices=99)
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    response = browser.decide("approve")
    assert (response.status_code, page_id(response)) == (409, "page-device-limit")
    assert "already has 5 devices" in response.text
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")


def test_a_box_already_in_the_account_signs_in_again_within_the_limit(
        http: httpx.Client, box_client: str, alice: Person, services: Services,
        clock: FakeClock) -> None:
    first = Browser(str(http.base_url))
    second = Browser(str(http.base_url))
    try:
        one = sign_in_box(http, first, clock, alice.email)
        two = sign_in_box(http, second, clock, alice.email)
    finally:
        first.close()
        second.close()
    device_one = services.signer.verify(one["access_token"]).device_id
    assert device_one == services.signer.verify(two["access_token"]).device_id


def test_token_of_a_revoked_device_is_refused(
        http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person, services: Services) -> None:
    tokens = sign_in_box(http, browser, clock, alice.email)
    device_id = services.signer.verify(tokens["access_token"]).device_id
    assert device_id is not None
    with services.db.session() as session:
        devices.revoke_device(session, device_id)
    listed = http.get("/v1/devices", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert listed.status_code == 401


def test_no_code_token_or_secret_reaches_the_logs(
        http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person, service_client, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
        ) -> None:
    caplog.set_level(logging.DEBUG)
    started = start_device_flow(http).json()
    browser.open("/device?user_code=" + started["user_code"])
    browser.sign_in(alice.email)
    browser.enter_code("WRNG-CODE")
    browser.enter_code(started["user_code"])
    browser.decide("approve")
    tokens = poll(http, started["device_code"]).json()
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": tokens["refresh_token"],
                                                "client_id": BOX_CLIENT}).json()
    http.post("/oauth/token", data={"grant_type": "refresh_token",
                                    "refresh_token": tokens["refresh_token"],
                                    "client_id": BOX_CLIENT})  # a replay: logged as such
    http.post("/oauth/token", data={"grant_type": "client_credentials"},
              auth=(service_client.client_id, "wrong-secret"))
    http.post("/oauth/token", data={"grant_type": "client_credentials"},
              auth=(service_client.client_id, service_client.secret))
    assert any(r.getMessage() == "device signed in" for r in caplog.records)
    assert any(r.getMessage() == "grant revoked" for r in caplog.records)
    # Everything but the test's own HTTP client's lines.
    logged = "\n".join(str(record.__dict__) for record in caplog.records
                       if not record.name.startswith(("httpx", "httpcore")))
    assert "/device" in logged
    secrets = [started["device_code"], started["user_code"],
               started["user_code"].replace("-", ""), tokens["access_token"],
               tokens["refresh_token"], refreshed["access_token"], refreshed["refresh_token"],
               service_client.secret, "wrong-secret", conftest.PASSWORD]
    for secret in secrets:
        assert secret not in logged
