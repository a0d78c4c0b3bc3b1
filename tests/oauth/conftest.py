"""The OAuth server over real HTTP (uvicorn), real Redis and a real database.

``clock`` is the time the OAuth endpoints see: tests move it past poll
intervals and expiries instead of sleeping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
import pytest

from stb_origin.accounts import users
from stb_origin.accounts.models import Role
from stb_origin.app import create_app
from stb_origin.oauth import clients
from stb_origin.oauth.models import ClientKind
from stb_origin.services import Services
from tests.support.http import run_server

BOX_CLIENT = "stb-box"
PASSWORD = "correct horse battery staple"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FORM = re.compile(r"<form .*?</form>", re.DOTALL)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Service:
    client_id: str
    secret: str


@dataclass
class Person:
    id: str
    account: str
    email: str


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(services: Services, clock: FakeClock) -> Iterator[str]:
    app = create_app(services)
    app.state.oauth_clock = clock
    with run_server(app) as base_url:
        yield base_url


@pytest.fixture
def http(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=10) as client:
        yield client


@pytest.fixture
def box_client(services: Services) -> str:
    with services.db.session() as session:
        clients.ensure_public_client(session, BOX_CLIENT, "Living-room box",
                                     ["playback", "account"])
    return BOX_CLIENT


@pytest.fixture
def service_client(services: Services) -> Service:
    with services.db.session() as session:
        client, secret = clients.create_client(session, "Catalog partner",
                                               ClientKind.CONFIDENTIAL, ["assets:read"])
    assert secret is not None
    return Service(client.id, secret)


def make_person(services: Services, email: str, role: Role = Role.SUBSCRIBER) -> Person:
    with services.db.session() as session:
        user = users.create_user(session, email, role=role, password=PASSWORD)
    return Person(user.id, user.account_id, email)


@pytest.fixture
def alice(services: Services) -> Person:
    return make_person(services, "alice@example.com")


def start_device_flow(http: httpx.Client, client_id: str = BOX_CLIENT, **fields: str
                      ) -> httpx.Response:
    data = {"client_id": client_id, "scope": "playback account", "device_serial": "SN-0001",
            "device_model": "Box 4K",
            "device_capabilities": '{"max_width": 3840, "max_height": 2160, "codecs": ["hvc1"]}'}
    data.update(fields)
    return http.post("/oauth/device_authorization", data={k: v for k, v in data.items() if v})


def poll(http: httpx.Client, device_code: str, client_id: str = BOX_CLIENT) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": DEVICE_GRANT,
                                           "device_code": device_code, "client_id": client_id})


def oauth_error(response: httpx.Response, error: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error, body
    description: str = body["error_description"]
    return description


class Browser:
    """A person at the /device page: follows redirects, keeps cookies, sends the
    CSRF token of the last page like a browser submitting its form."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10, follow_redirects=True)
        self.page: httpx.Response | None = None

    def close(self) -> None:
        self.http.close()

    @property
    def csrf(self) -> str:
        assert self.page is not None
        match = _CSRF.search(self.page.text)
        assert match, self.page.text
        return match.group(1)

    def open(self, path: str = "/device") -> httpx.Response:
        self.page = self.http.get(path)
        return self.page

    def submit(self, action: str, **fields: Any) -> httpx.Response:
        """Send the page's form for ``action``: its hidden fields, then ``fields``."""
        assert self.page is not None
        for form in _FORM.findall(self.page.text):
            hidden = {name: unescape(value) for name, value in _HIDDEN.findall(form)}
            if hidden.get("action") == action:
                break
        else:
            raise AssertionError(f"no {action} form on this page: {self.page.text}")
        self.page = self.http.post("/device", data={**hidden, **fields})
        return self.page

    def post(self, **fields: Any) -> httpx.Response:
        """A crafted POST with this page's CSRF token: what no form here offers."""
        self.page = self.http.post("/device", data={"csrf_token": self.csrf, **fields})
        return self.page

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        if self.page is None:
            self.open()
        return self.submit(action="sign_in", email=email, password=password)

    def enter_code(self, user_code: str) -> httpx.Response:
        return self.submit(action="enter_code", user_code=user_code)

    def decide(self, decision: str) -> httpx.Response:
        return self.submit(action="decide", decision=decision)


@pytest.fixture
def browser(api: str) -> Iterator[Browser]:
    person = Browser(api)
    yield person
    person.close()


def page_id(response: httpx.Response) -> str:
    match = re.search(r'<main id="([^"]+)"', response.text)
    assert match, response.text
    return match.group(1)


def sign_in_box(http: httpx.Client, browser: Browser, clock: FakeClock, email: str,
                **fields: str) -> dict[str, Any]:
    """The whole device flow; returns the token response."""
    started = start_device_flow(http, **fields)
    assert started.status_code == 200, started.text
    codes = started.json()
    browser.sign_in(email)
    browser.enter_code(codes["user_code"])
    assert page_id(browser.decide("approve")) == "page-approved"
    response = poll(http, codes["device_code"])
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens
