"""Signing in and out of the console as a browser (and an attacker) would: cookie
flags, CSRF, Origin, session fixation, idle time-out, roles, rate limits, escaping."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from stb_origin.accounts.models import Role, User
from stb_origin.app import create_app
from stb_origin.console import pages, visit
from stb_origin.console.signin import SIGN_IN_PER_EMAIL
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.console.conftest import Browser, Person, csrf_of, make_person
from tests.support.http import run_server


def _console_cookie(response: httpx.Response) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if "stb_console=" in h]
    assert len(found) == 1, response.headers
    return found[0]


def _session_key(cookie: str) -> str:
    return visit.SESSION_PREFIX + hashlib.sha256(cookie.encode()).hexdigest()


def test_the_first_visit_is_a_hardened_sign_in_page(browser: Browser) -> None:
    response = browser.open()
    assert response.status_code == 200
    assert 'id="page-sign-in"' in response.text and 'name="csrf_token"' in response.text
    assert "<script" not in response.text and "<style" not in response.text
    policy = response.headers["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                 "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert rule in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    cookie = _console_cookie(response).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # a plain-HTTP public base URL: a laptop


def test_behind_https_the_cookie_is_secure_and_host_only(settings: Settings) -> None:
    services = build_services(settings.with_(public_base_url="https://console.example.com"))
    try:
        with run_server(create_app(services)) as base_url:
            response = httpx.get(base_url + "/console", timeout=10)
    finally:
        services.close()
    cookie = _console_cookie(response)
    assert cookie.startswith("__Host-stb_console=")
    assert "secure" in cookie.lower() and "domain" not in cookie.lower()


def test_signing_in_starts_a_new_session_and_the_planted_one_is_worthless(
        browser: Browser, services: Services, editor: Person) -> None:
    browser.open()
    planted = browser.cookie
    assert planted is not None
    response = browser.sign_in(editor)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert browser.cookie not in (None, planted)
    assert services.redis.get(_session_key(planted)) is None
    # The planted cookie cannot mint, whatever CSRF token it offers.
    with Browser(browser.base_url) as attacker:
        attacker.http.cookies.set("stb_console", planted)
        assert attacker.mint(csrf="anything").status_code == 401
    shell = browser.open()
    assert 'id="signed-in-as"' in shell.text and editor.email in shell.text
    # Scripts only from files of our own: no inline script for the CSP to allow.
    assert shell.text.count("<script") == shell.text.count('<script src="/console/static/') \
        + shell.text.count('<script type="module" src="/console/static/')


@pytest.mark.parametrize("case", ["no token", "wrong token", "other origin", "no origin"])
def test_a_sign_in_without_our_csrf_token_and_origin_is_refused(
        browser: Browser, editor: Person, case: str) -> None:
    csrf = csrf_of(browser.open().text)
    form = {"csrf_token": csrf, "email": editor.email, "password": editor.password}
    headers = {}
    if case == "no token":
        del form["csrf_token"]
    elif case == "wrong token":
        form["csrf_token"] = csrf[:-2] + "xx"
    elif case == "other origin":
        headers["Origin"] = "https://evil.example"
    response = browser.http.post("/console/sign-in", data=form, headers=headers) \
        if case != "no origin" else httpx.post(
            browser.base_url + "/console/sign-in", data=form, cookies=browser.http.cookies,
            timeout=10)
    assert response.status_code == 403
    assert 'id="page-problem"' in response.text
    assert "stb_console=" not in response.headers.get("set-cookie", "")


def test_wrong_passwords_and_unknown_people_get_the_same_answer(
        browser: Browser, editor: Person) -> None:
    wrong = browser.sign_in(editor, password="not the password at all")
    unknown = browser.sign_in(Person("x", "nobody@example.com"))
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "Wrong email or password." in response.text
    assert "set-cookie" not in wrong.headers


@pytest.mark.parametrize("role", [Role.SUBSCRIBER])
def test_only_editors_and_admins_get_in(browser: Browser, services: Services, role: Role) -> None:
    subscriber = make_person(services, role)
    before = browser.open() and browser.cookie
    response = browser.sign_in(subscriber)
    assert response.status_code == 403
    assert "for editors and admins" in response.text
    assert browser.cookie == before  # no signed-in session was made
    assert browser.mint(csrf=csrf_of(browser.open().text)).status_code == 401


def test_a_user_whose_role_is_taken_away_is_out_at_the_next_request(
        browser: Browser, services: Services, editor: Person) -> None:
    browser.sign_in(editor)
    csrf = browser.page_csrf()
    assert browser.mint(csrf=csrf).status_code == 200
    with services.db.session() as session:
        user = session.get(User, editor.id)
        assert user is not None
        user.role = Role.SUBSCRIBER
    response = browser.mint(csrf=csrf)
    assert response.status_code == 401
    assert 'id="page-sign-in"' in browser.open().text


def test_signing_out_ends_the_session_and_its_tokens(
        browser: Browser, services: Services, editor: Person) -> None:
    browser.sign_in(editor)
    csrf = browser.page_csrf()
    token = browser.mint(csrf=csrf).json()["access_token"]
    listing = {"Authorization": f"Bearer {token}"}
    assert browser.http.get("/v1/assets", headers=listing).status_code == 200
    old_cookie = browser.cookie
    assert old_cookie is not None
    # Signing out is a form with the CSRF token too: a forged sign-out does nothing.
    assert browser.http.post("/console/sign-out", data={"csrf_token": "forged"}
                             ).status_code == 403
    response = browser.http.post("/console/sign-out", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert "stb_console=" in response.headers["set-cookie"]
    assert services.redis.get(_session_key(old_cookie)) is None
    with Browser(browser.base_url) as replay:
        replay.http.cookies.set("stb_console", old_cookie)
        assert replay.mint(csrf=csrf).status_code == 401
    # The token the page held stops at once, not at its expiry.
    assert browser.http.get("/v1/assets", headers=listing).status_code == 401


def test_an_idle_session_ends_and_every_request_keeps_it_alive(
        browser: Browser, services: Services, editor: Person) -> None:
    browser.sign_in(editor)
    csrf = browser.page_csrf()
    assert browser.cookie is not None
    key = _session_key(browser.cookie)
    idle_s = services.settings.console_idle_timeout_s
    assert idle_s - 5 <= services.redis.ttl(key) <= idle_s
    services.redis.expire(key, 30)  # as if most of the idle time had passed
    assert browser.mint(csrf=csrf).status_code == 200
    assert services.redis.ttl(key) > idle_s - 5  # the request counted as activity
    services.redis.pexpire(key, 1)  # ...and now all of it has passed
    time.sleep(0.01)
    assert browser.mint(csrf=csrf).status_code == 401
    assert 'id="page-sign-in"' in browser.open().text


def test_sign_ins_are_rate_limited_per_email(browser: Browser, editor: Person) -> None:
    for _ in range(SIGN_IN_PER_EMAIL):
        assert browser.sign_in(editor, password="wrong password, again").status_code == 400
    limited = browser.sign_in(editor)  # even the right password now waits
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert 'id="page-problem"' in limited.text


def test_text_from_the_account_is_escaped_in_the_page(browser: Browser,
                                                      services: Services) -> None:
    sly = make_person(services, Role.EDITOR, email="<img/src=x/onerror=alert(1)>@example.com")
    browser.sign_in(sly)
    shell = browser.open().text
    assert "<img/src=x" not in shell
    assert "&lt;img/src=x/onerror=alert(1)&gt;@example.com" in shell


def test_huge_or_broken_forms_are_refused_without_a_session_change(
        browser: Browser, editor: Person) -> None:
    csrf = csrf_of(browser.open().text)
    huge = browser.http.post("/console/sign-in", content=b"csrf_token=" + b"a" * 100_000,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 403
    bad_utf8 = browser.http.post("/console/sign-in", content=b"csrf_token=%ff%fe",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert bad_utf8.status_code == 403
    as_json = browser.http.post("/console/sign-in", json={"csrf_token": csrf})
    assert as_json.status_code == 403
    assert browser.sign_in(editor).status_code == 303  # the session is still good


def test_the_policy_lets_the_pages_reach_the_api_and_keys_where_they_are() -> None:
    policy = dict(rule.split(" ", 1) for rule in pages.headers(
        "https://tv.example.com/", "https://keys.example.net/k")[
            "Content-Security-Policy"].split("; "))
    assert policy["connect-src"] == "'self' https://keys.example.net https://tv.example.com"
    assert policy["media-src"].startswith("'self' blob:")
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "worker-src" not in policy  # hls.js runs without its worker
