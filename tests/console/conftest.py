"""A console user and an HTTP client that behaves like the console's pages in a browser."""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from stb_origin.accounts import passwords, users
from stb_origin.accounts.models import Role
from stb_origin.services import Services

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    password: str = PASSWORD


@functools.cache
def _password_hash() -> str:
    # scrypt is slow on purpose: hashed once for every test's people
    return passwords.hash_password(PASSWORD)


def make_person(services: Services, role: Role = Role.EDITOR, email: str | None = None) -> Person:
    email = email or f"{secrets.token_hex(4)}@example.com"
    with services.db.session() as session:
        user = users.create_user(session, email, role=role)
        user.password_hash = _password_hash()
        return Person(user.id, user.email)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


class Browser:
    """Cookies kept, Origin sent as the console's own pages send it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10, headers={"Origin": base_url})

    def open(self) -> httpx.Response:
        return self.http.get("/console")

    def sign_in(self, person: Person, password: str | None = None) -> httpx.Response:
        csrf = csrf_of(self.open().text)
        return self.http.post("/console/sign-in", data={
            "csrf_token": csrf, "email": person.email,
            "password": password or person.password})

    def page_csrf(self) -> str:
        """The CSRF token of the signed-in shell (its meta tag)."""
        page = self.open()
        found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert found, page.text
        return found.group(1)

    def mint(self, json: object = None, csrf: str | None = None,
             **kwargs: object) -> httpx.Response:
        headers = {"X-CSRF-Token": csrf if csrf is not None else self.page_csrf()}
        return self.http.post("/console/token", headers=headers, json=json, **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get("stb_console")


@pytest.fixture
def browser(api: str) -> Iterator[Browser]:
    opened = Browser(api)
    yield opened
    opened.http.close()


@pytest.fixture
def editor(services: Services) -> Person:
    return make_person(services, Role.EDITOR)
