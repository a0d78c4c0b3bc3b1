from __future__ import annotations

from typing import Any

import pytest

from stb_origin.accounts import users
from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.accounts.models import Account, Role, User
from stb_origin.db import Database


def test_a_user_gets_an_account_of_its_own_unless_one_is_given(db: Database) -> None:
    with db.session() as session:
        parent = users.create_user(session, "  Parent@Example.COM ", name="Parent")
        child = users.create_user(session, "kid@example.com", account_id=parent.account_id)
        staff = users.create_user(session, "ed@example.com", role=Role.EDITOR)
    assert parent.email == "parent@example.com"
    assert parent.role == "subscriber" and staff.role == "editor"
    assert child.account_id == parent.account_id != staff.account_id
    with db.session() as session:
        assert session.query(Account).count() == 2
        found = users.get_user(session, parent.id)
        assert found is not None and found.name == "Parent"
        assert users.find_user(session, "PARENT@example.com") is not None
        assert users.get_user(session, "0" * 32) is None


def test_one_user_per_email_whatever_the_case(db: Database) -> None:
    with db.session() as session:
        users.create_user(session, "dup@example.com")
    with pytest.raises(AlreadyExists), db.session() as session:
        users.create_user(session, "DUP@example.com")
    with db.session() as session:
        assert session.query(User).count() == 1
        # The refused user's new account was rolled back with it.
        assert session.query(Account).count() == 1


def test_bad_users_are_refused(db: Database, subtests: pytest.Subtests) -> None:
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"email": "not-an-email"}, InvalidValue),
        ({"email": "two@@example.com"}, InvalidValue),
        ({"email": "a b@example.com"}, InvalidValue),
        ({"email": "x@example.com\nBcc: y@example.com"}, InvalidValue),
        ({"email": "x@example.com", "role": "root"}, InvalidValue),
        ({"email": "x@example.com", "password": "short"}, InvalidValue),
        ({"email": "x@example.com", "name": "n" * 201}, InvalidValue),
        ({"email": "x@example.com", "account_id": "f" * 32}, NotFound),
    ]
    for kwargs, error in cases:
        with subtests.test(**kwargs), pytest.raises(error), db.session() as session:
            users.create_user(session, **kwargs)
    with db.session() as session:
        assert session.query(User).count() == 0
        assert session.query(Account).count() == 0


def test_passwords_are_stored_hashed_and_checked(db: Database) -> None:
    with db.session() as session:
        user = users.create_user(session, "pw@example.com", password="a long passphrase")
        users.create_user(session, "nopw@example.com")
    assert user.password_hash is not None and user.password_hash.startswith("$scrypt$")
    assert "a long passphrase" not in user.password_hash
    assert "passphrase" not in repr(user) and "scrypt" not in repr(user)
    assert user.to_json()["has_password"] is True and "password_hash" not in user.to_json()
    with db.session() as session:
        signed_in = users.authenticate(session, "PW@example.com", "a long passphrase")
        assert signed_in is not None and signed_in.id == user.id
        assert users.authenticate(session, "pw@example.com", "a wrong passphrase") is None
        assert users.authenticate(session, "nobody@example.com", "a long passphrase") is None
        assert users.authenticate(session, "nopw@example.com", "") is None


def test_list_users_newest_first_by_account(db: Database) -> None:
    with db.session() as session:
        first = users.create_user(session, "u0@example.com")
        made = [first] + [users.create_user(session, f"u{n}@example.com",
                                            account_id=first.account_id) for n in range(1, 4)]
        users.create_user(session, "other@example.com")
    with db.session() as session:
        page = users.page_users(session, 2, None, first.account_id)
        rest = users.page_users(session, 10, page[-1].id, first.account_id)
        everyone = users.page_users(session, 10, None)
    assert [u.id for u in page + rest] == [u.id for u in reversed(made)]
    assert len(everyone) == 5
