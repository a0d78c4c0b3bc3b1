"""The /device page as a browser sees it: sessions, CSRF, rate limits, escaping."""

from __future__ import annotations

import re

import httpx
import pytest

from stb_origin.accounts.models import Role
from stb_origin.app import create_app
from stb_origin.oauth import verify_page
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.oauth.conftest import (
    Browser,
    FakeClock,
    Person,
    make_person,
    oauth_error,
    page_id,
    poll,
    start_device_flow,
)
from tests.support.http import run_server


def _cookie_header(response: httpx.Response) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if "device_session" in h]
    assert len(headers) == 1, response.headers
    return headers[0]


def test_first_visit_asks_to_sign_in_with_a_hardened_page(browser: Browser) -> None:
    response = browser.open()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert page_id(response) == "page-sign-in"
    for field in ('id="sign-in"', 'id="email" name="email"', 'id="password" name="password"',
                  'id="sign-in-submit"', 'name="csrf_token"'):
        assert field in response.text
    assert "<script" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    cookie = _cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain-HTTP public_base_url: a laptop


def test_cookie_is_secure_and_host_only_behind_https(settings: Settings) -> None:
    services = build_services(settings.with_(public_base_url="https://tv.example.com"))
    try:
        with run_server(create_app(services)) as base_url:
            response = httpx.get(base_url + "/device", timeout=10)
    finally:
        services.close()
    cookie = _cookie_header(response)
    assert cookie.startswith(verify_page.SECURE_COOKIE + "=")
    assert "secure" in cookie.lower() and "domain" not in cookie.lower()


def test_verification_uri_complete_prefills_the_code_but_the_user_still_confirms(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person,
        clock: FakeClock) -> None:
    codes = start_device_flow(http).json()
    path = codes["verification_uri_complete"].removeprefix("http://127.0.0.1:8000")
    assert page_id(browser.open(path)) == "page-sign-in"
    # The code rides along through sign-in, into the code form, not past it.
    after_sign_in = browser.sign_in(alice.email)
    assert page_id(after_sign_in) == "page-enter-code"
    assert f'value="{codes["user_code"]}"' in after_sign_in.text
    assert alice.email in after_sign_in.text
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")
    confirm = browser.enter_code(codes["user_code"])
    assert page_id(confirm) == "page-confirm"
    for element in ("confirm-user-code", "confirm-client", "confirm-device-model", 'id="approve"',
                    'id="deny"'):
        assert element in confirm.text
    assert codes["user_code"] in confirm.text
    assert "Living-room box" in confirm.text and "Box 4K" in confirm.text
    clock.advance(codes["interval"])
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")


@pytest.mark.parametrize("typed", ["{code}", "{lower}", "{nodash}", " {spaced} "])
def test_user_code_is_read_case_and_dash_insensitively(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person,
        typed: str) -> None:
    code = start_device_flow(http).json()["user_code"]
    plain = code.replace("-", "")
    entry = typed.format(code=code, lower=code.lower(), nodash=plain.lower(),
                         spaced=f"{plain[:4]} {plain[4:]}")
    browser.sign_in(alice.email)
    assert page_id(browser.enter_code(entry)) == "page-confirm"


def test_wrong_password_is_refused_without_saying_which_part(
        browser: Browser, alice: Person) -> None:
    response = browser.sign_in(alice.email, "wrong password!")
    assert (response.status_code, page_id(response)) == (400, "page-sign-in")
    assert "Wrong email or password" in response.text
    unknown = browser.sign_in("nobody@example.com", "wrong password!")
    assert "Wrong email or password" in unknown.text


def test_sign_in_starts_a_new_session(browser: Browser, alice: Person, services: Services
                                      ) -> None:
    browser.open()
    before = browser.http.cookies.get(verify_page.COOKIE)
    browser.sign_in(alice.email)
    after = browser.http.cookies.get(verify_page.COOKIE)
    assert before and after and before != after
    assert verify_page.sessions(services.redis).load(before) is None
    session = verify_page.sessions(services.redis).load(after)
    assert session is not None and session.user_id == alice.id


def test_sign_in_is_rate_limited(browser: Browser, alice: Person) -> None:
    for _ in range(verify_page.SIGN_IN_PER_EMAIL):
        assert browser.sign_in(alice.email, "wrong password!").status_code == 400
    refused = browser.sign_in(alice.email)  # even the right password, now
    assert (refused.status_code, page_id(refused)) == (429, "page-rate-limited")
    assert 0 < int(refused.headers["retry-after"]) <= verify_page.WINDOW_S


def test_sign_in_is_rate_limited_per_address_of_the_client(browser: Browser) -> None:
    for n in range(verify_page.SIGN_IN_PER_IP):
        browser.sign_in(f"guess{n}@example.com", "wrong password!")
    assert browser.sign_in("another@example.com", "wrong password!").status_code == 429


def test_guessing_user_codes_is_rate_limited_per_session(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person) -> None:
    code = start_device_flow(http).json()["user_code"]
    browser.sign_in(alice.email)
    for guess in ("BBBB-BBBB", "CCCC-CCCC", "not a code", "DDDD-DDDD", "FFFF-FFFF"):
        response = browser.enter_code(guess)
        assert (response.status_code, page_id(response)) == (400, "page-enter-code")
        assert 'id="error"' in response.text
    blocked = browser.enter_code(code)  # the right code gets no free look-up
    assert (blocked.status_code, page_id(blocked)) == (429, "page-rate-limited")
    assert "retry-after" in blocked.headers


def test_guessing_user_codes_is_rate_limited_per_client_address(
        http: httpx.Client, box_client: str, api: str, services: Services) -> None:
    statuses = []
    for n in range(5):
        person = make_person(services, f"p{n}@example.com")
        browser = Browser(api)
        browser.sign_in(person.email)
        form = {"csrf_token": browser.csrf, "action": "enter_code", "user_code": "BBBB-BBBB"}
        for _ in range(verify_page.CODE_ENTRIES_PER_SESSION):
            statuses.append(browser.http.post("/device", data=form).status_code)
        browser.close()
    limit = verify_page.CODE_ENTRIES_PER_IP
    assert statuses[:limit] == [400] * limit
    assert set(statuses[limit:]) == {429}


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_posts_without_the_sessions_csrf_token_are_forbidden(
        http: httpx.Client, box_client: str, browser: Browser, alice: Person,
        services: Services, csrf: str | None) -> None:
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    data = {"action": "decide", "decision": "approve"}
    if csrf is not None:
        data["csrf_token"] = csrf
    response = browser.http.post("/device", data=data)
    assert (response.status_code, page_id(response)) == (403, "page-forbidden")
    oauth_error(poll(http, codes["device_code"]), "authorization_pending")


def test_a_post_from_another_site_without_our_cookie_is_forbidden(
        api: str, browser: Browser, alice: Person) -> None:
    browser.open()
    token = browser.csrf
    # Another site's page can post the form, but not with our session cookie.
    response = httpx.post(api + "/device", timeout=10, data={
        "csrf_token": token, "action": "sign_in", "email": alice.email, "password": "x" * 10})
    assert (response.status_code, page_id(response)) == (403, "page-forbidden")


def test_csrf_token_of_another_session_is_forbidden(
        api: str, browser: Browser, alice: Person) -> None:
    other = Browser(api)
    other.open()
    browser.open()
    response = browser.http.post("/device", data={"csrf_token": other.csrf, "action": "sign_in",
                                                  "email": alice.email, "password": "x" * 10})
    other.close()
    assert response.status_code == 403


def test_everything_shown_is_escaped(http: httpx.Client, box_client: str, browser: Browser,
                                     alice: Person) -> None:
    model = '<script>alert("x")</script>&'
    codes = start_device_flow(http, device_model=model).json()
    first = browser.open('/device?user_code="><script>alert(1)</script>')
    assert "<script>alert" not in first.text
    browser.sign_in(alice.email)
    confirm = browser.enter_code(codes["user_code"])
    assert "<script>" not in confirm.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in confirm.text
    approved = browser.decide("approve")
    assert page_id(approved) == "page-approved" and "<script>" not in approved.text


def test_decision_needs_a_code_entered_first(browser: Browser, alice: Person) -> None:
    browser.sign_in(alice.email)
    response = browser.post(action="decide", decision="approve")
    assert (response.status_code, page_id(response)) == (400, "page-enter-code")


def test_a_confirmation_answers_once(http: httpx.Client, box_client: str, browser: Browser,
                                     alice: Person) -> None:
    codes = start_device_flow(http).json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    csrf = browser.csrf
    assert page_id(browser.decide("deny")) == "page-denied"
    again = browser.http.post("/device", data={"csrf_token": csrf, "action": "decide",
                                               "decision": "approve"})
    assert page_id(again) == "page-enter-code"
    oauth_error(poll(http, codes["device_code"]), "access_denied")


def test_code_entry_needs_a_signed_in_user(http: httpx.Client, box_client: str,
                                           browser: Browser) -> None:
    code = start_device_flow(http).json()["user_code"]
    browser.open()
    response = browser.post(action="enter_code", user_code=code)
    assert (response.status_code, page_id(response)) == (400, "page-sign-in")


def test_sign_out_ends_the_session(browser: Browser, alice: Person, services: Services) -> None:
    browser.sign_in(alice.email)
    cookie = browser.http.cookies.get(verify_page.COOKIE)
    response = browser.submit(action="sign_out")
    assert page_id(response) == "page-sign-in"
    assert verify_page.sessions(services.redis).load(cookie) is None


def test_a_subscriber_cannot_grant_more_than_they_have(
        http: httpx.Client, services: Services, browser: Browser, clock: FakeClock,
        alice: Person) -> None:
    from stb_origin.oauth import clients

    with services.db.session() as session:
        clients.ensure_public_client(session, "studio-box", "Studio box",
                                     ["playback", "assets:write"])
    codes = start_device_flow(http, client_id="studio-box",
                              scope="playback assets:write").json()
    browser.sign_in(alice.email)
    confirm = browser.enter_code(codes["user_code"])
    assert "upload" not in confirm.text
    browser.decide("approve")
    tokens = poll(http, codes["device_code"], client_id="studio-box").json()
    assert tokens["scope"] == "playback"
    # An editor may hand the same box upload rights.
    editor = make_person(services, "ed@example.com", Role.EDITOR)
    codes = start_device_flow(http, client_id="studio-box",
                              scope="playback assets:write").json()
    other = Browser(str(http.base_url))
    other.sign_in(editor.email)
    other.enter_code(codes["user_code"])
    other.decide("approve")
    other.close()
    tokens = poll(http, codes["device_code"], client_id="studio-box").json()
    assert tokens["scope"] == "assets:write playback"


def test_a_client_only_asking_for_what_the_user_lacks_is_refused(
        http: httpx.Client, services: Services, browser: Browser, alice: Person) -> None:
    from stb_origin.oauth import clients

    with services.db.session() as session:
        clients.ensure_public_client(session, "admin-box", "Admin box", ["admin"])
    codes = start_device_flow(http, client_id="admin-box", scope="admin").json()
    browser.sign_in(alice.email)
    browser.enter_code(codes["user_code"])
    response = browser.decide("approve")
    assert (response.status_code, page_id(response)) == (403, "page-not-allowed")


def test_form_fields_have_stable_ids(http: httpx.Client, box_client: str, browser: Browser,
                                     alice: Person) -> None:
    code = start_device_flow(http).json()["user_code"]
    browser.sign_in(alice.email)
    page = browser.page
    assert page is not None
    for name in ("user_code", "continue", "sign-out-submit"):
        assert re.search(rf'id="{name}"', page.text), name
    assert 'name="user_code"' in page.text
    browser.enter_code(code)
