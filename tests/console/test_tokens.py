"""POST /console/token: only our own signed-in pages get a token, and only what the
role allows; a preview token opens one asset's keys."""

from __future__ import annotations

import httpx
import pytest

from stb_origin import scopes
from stb_origin.accounts.models import Role
from stb_origin.drm.access import PREVIEW_CLIENT
from stb_origin.services import Services
from tests.console.conftest import Browser, Person, make_person

ASSET = "ab" * 16


@pytest.mark.parametrize("role, granted", [(Role.EDITOR, scopes.EDITOR),
                                           (Role.ADMIN, scopes.ALL)])
def test_the_page_gets_a_short_token_with_its_roles_scopes(
        browser: Browser, services: Services, role: Role, granted: frozenset[str]) -> None:
    person = make_person(services, role)
    browser.sign_in(person)
    response = browser.mint()
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = services.signer.verify(body["access_token"])
    assert claims.subject == person.id and claims.scopes == granted
    assert claims.device_id is None and claims.assets is None
    assert body["expires_in"] == services.settings.console_token_ttl_s
    assert body["user"] == {"id": person.id, "email": person.email, "role": role.value}


def test_a_preview_token_opens_one_asset_and_nothing_else(
        browser: Browser, services: Services, editor: Person) -> None:
    browser.sign_in(editor)
    body = browser.mint({"asset": ASSET}).json()
    claims = services.signer.verify(body["access_token"])
    assert claims.scopes == {scopes.PLAYBACK} and claims.assets == {ASSET}
    assert claims.client_id == PREVIEW_CLIENT and claims.device_id is None
    assert body["scope"] == "playback"
    # It lists nothing: a preview token is for keys only.
    listing = browser.http.get("/v1/assets",
                               headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listing.status_code == 403


def test_get_and_other_methods_are_refused(browser: Browser, editor: Person) -> None:
    browser.sign_in(editor)
    for method in ("GET", "PUT", "DELETE"):
        response = browser.http.request(method, "/console/token")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert "access_token" not in response.text


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_cross_site_requests_get_no_token(browser: Browser, editor: Person,
                                          origin: str | None) -> None:
    browser.sign_in(editor)
    csrf = browser.page_csrf()
    headers = {"X-CSRF-Token": csrf, **({"Origin": origin} if origin else {})}
    response = httpx.post(browser.base_url + "/console/token", headers=headers,
                          cookies=browser.http.cookies, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin"


@pytest.mark.parametrize("csrf", [None, "", "x" * 43, "forged-" + "a" * 300])
def test_without_the_sessions_csrf_token_there_is_no_token(
        browser: Browser, editor: Person, csrf: str | None) -> None:
    browser.sign_in(editor)
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    response = browser.http.post("/console/token", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_another_sessions_csrf_token_does_not_do(browser: Browser, services: Services,
                                                 editor: Person) -> None:
    browser.sign_in(editor)
    with Browser(browser.base_url) as other:
        other.sign_in(make_person(services))
        response = browser.mint(csrf=other.page_csrf())
    assert response.status_code == 403


@pytest.mark.parametrize("cookie", [None, "", "a" * 10_000, "../../etc", "%ff%00"])
def test_without_a_session_there_is_no_token(browser: Browser, cookie: str | None) -> None:
    if cookie is not None:
        browser.http.cookies.set("stb_console", cookie)
    response = browser.mint(csrf="anything")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signed_out"


@pytest.mark.parametrize("body, content_type, status", [
    (b'{"asset": "../../etc/passwd"}', "application/json", 400),
    (b'{"asset": 7}', "application/json", 400),
    (b'{"asset": "' + b"a" * 32 + b'", "scope": "admin"}', "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"asset": ', "application/json", 400),
    (b"asset=" + b"a" * 32, "application/x-www-form-urlencoded", 415),
    (b'{"asset": "' + b"a" * 2_000_000 + b'"}', "application/json", 413),
])
def test_bad_bodies_are_refused(browser: Browser, editor: Person, body: bytes,
                                content_type: str, status: int) -> None:
    browser.sign_in(editor)
    csrf = browser.page_csrf()
    response = browser.http.post("/console/token", content=body, headers={
        "X-CSRF-Token": csrf, "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert "access_token" not in response.text
