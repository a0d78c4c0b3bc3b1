"""Users: create, look up, list, and check a password."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stb_origin.accounts import passwords
from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.accounts.models import Account, Role, User
from stb_origin.db.paging import newest_first
from stb_origin.db.types import new_id

# Deliberately loose: one @, something on each side, a dot in the domain, no
# spaces. Whether the address works is for a confirmation mail to find out.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 320
MAX_NAME = 200

# Verified against when the email is unknown, so that the answer takes as long
# as for a known user with a wrong password.
_dummy_hash: str | None = None


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise InvalidValue("email: not an email address")
    return email


def create_user(session: Session, email: str, *, role: str = Role.SUBSCRIBER, name: str = "",
                password: str | None = None, account_id: str | None = None) -> User:
    """A new user in ``account_id``, or in a new account of its own when None."""
    email = normalize_email(email)
    if role not in set(Role):
        raise InvalidValue(f"role: one of {', '.join(Role)}")
    if len(name) > MAX_NAME:
        raise InvalidValue(f"name: at most {MAX_NAME} characters")
    if password is not None:
        passwords.check_strength(password)
    if find_user(session, email) is not None:
        raise AlreadyExists("a user with this email exists")
    if account_id is None:
        account = Account(id=new_id())
        session.add(account)
        session.flush()
    elif (found := session.get(Account, account_id)) is not None:
        account = found
    else:
        raise NotFound("no such account")
    user = User(account_id=account.id, email=email, name=name, role=Role(role).value,
                password_hash=None if password is None else passwords.hash_password(password))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        # Another request took the address between our check and our insert;
        # the caller's transaction is rolled back with this error.
        raise AlreadyExists("a user with this email exists") from None
    return user


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, email: str) -> User | None:
    try:
        email = normalize_email(email)
    except InvalidValue:
        return None
    return session.scalar(select(User).where(User.email == email))


def page_users(session: Session, limit: int, after: str | None,
               account_id: str | None = None) -> list[User]:
    query = select(User)
    if account_id is not None:
        query = query.where(User.account_id == account_id)
    return newest_first(session, User, query, limit, after)


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user with this email and password, else None (in about the same time)."""
    global _dummy_hash
    user = find_user(session, email)
    if user is None or user.password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = passwords.hash_password("not the password of anyone")
        passwords.verify_password(password, _dummy_hash)
        return None
    if not passwords.verify_password(password, user.password_hash):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


@dataclass(frozen=True)
class UserRow:
    """What authorising a key fetch needs of a user, read without the ORM."""

    account_id: str
    role: Role


def read_user(conn: Connection, user_id: str) -> UserRow | None:
    table = User.__table__.c
    found = conn.execute(select(table.account_id, table.role)
                         .where(table.id == user_id)).first()
    return UserRow(found.account_id, Role(found.role)) if found is not None else None
