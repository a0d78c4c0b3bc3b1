"""The device authorization grant (RFC 8628), from the box's request to its tokens.

States: pending → approved | denied (by the user, on /device) → issued (the box
polled and got its tokens). Every transition is a conditional UPDATE whose row
count says who won, so two requests racing on one code cannot both succeed, on
SQLite (one writer at a time) and on PostgreSQL (the row lock, then the WHERE
re-checked) alike.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stb_origin.accounts.devices import Capabilities, check_identity, register_device
from stb_origin.accounts.errors import InvalidValue
from stb_origin.accounts.models import User
from stb_origin.oauth.errors import OAuthError, invalid_grant, invalid_request
from stb_origin.oauth.models import AuthorizationState, DeviceAuthorization, OAuthClient
from stb_origin.oauth.scopes import as_text, grantable
from stb_origin.oauth.usercode import new_user_code

SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the interval
# Poll timers and networks jitter: a poll this much early still counts as on time.
POLL_LEEWAY_S = 1
# Finished or abandoned authorizations are deleted this long after they expire.
KEEP_EXPIRED_S = 86400


class NotPending(Exception):
    """The code expired, or was approved or denied already."""


class NothingToGrant(Exception):
    """The user may grant none of the scopes the device asked for."""


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    model: str
    capabilities: Capabilities

    @classmethod
    def from_form(cls, form: dict[str, str]) -> DeviceInfo:
        serial, model = form.get("device_serial", ""), form.get("device_model", "")
        try:
            # What register_device will check on approval, checked now so that the
            # box hears of a bad serial, not the user who tries to approve it.
            check_identity(serial, model)
        except InvalidValue as exc:  # "serial: ..." / "model: ..."
            raise invalid_request(f"device_{exc}") from None
        try:
            raw = json.loads(form.get("device_capabilities", "{}"))
        except (ValueError, RecursionError):
            raise invalid_request("device_capabilities: not JSON") from None
        try:
            return cls(serial, model, Capabilities.from_json(raw))
        except ValueError as exc:  # its message starts "capabilities..."
            raise invalid_request(f"device_{exc}") from None


@dataclass(frozen=True)
class Started:
    authorization: DeviceAuthorization
    device_code: str = field(repr=False)


def hash_device_code(device_code: str) -> str:
    return hashlib.sha256(device_code.encode()).hexdigest()


def start(session: Session, client: OAuthClient, scopes: frozenset[str], device: DeviceInfo,
          ttl_s: int, interval_s: int, now: float) -> Started:
    session.execute(delete(DeviceAuthorization).where(
        DeviceAuthorization.expires_at < int(now) - KEEP_EXPIRED_S))
    device_code = secrets.token_urlsafe(32)
    for attempt in range(5):
        authorization = DeviceAuthorization(
            id=secrets.token_hex(16), device_code_hash=hash_device_code(device_code),
            user_code=new_user_code(), client_id=client.id, scopes=as_text(scopes),
            device_serial=device.serial, device_model=device.model,
            device_capabilities=device.capabilities.to_json(),
            state=AuthorizationState.PENDING.value, created_at=int(now),
            expires_at=int(now) + ttl_s, interval_s=interval_s)
        try:
            # A savepoint: a user code already taken costs one retry, not the request.
            with session.begin_nested():
                session.add(authorization)
            return Started(authorization, device_code)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def find_pending(session: Session, user_code: str, now: float) -> DeviceAuthorization | None:
    return session.scalar(select(DeviceAuthorization).where(
        DeviceAuthorization.user_code == user_code,
        DeviceAuthorization.state == AuthorizationState.PENDING.value,
        DeviceAuthorization.expires_at > int(now)))


def get_pending(session: Session, authorization_id: str, now: float) -> DeviceAuthorization:
    found = session.get(DeviceAuthorization, authorization_id)
    if (found is None or found.state != AuthorizationState.PENDING.value
            or found.expires_at <= now):
        raise NotPending()
    return found


def approve(session: Session, authorization_id: str, user: User, max_devices: int,
            now: float) -> DeviceAuthorization:
    """Register the box in the user's account and bind the authorization to both.

    Raises DeviceLimitReached (nothing approved), NotPending or NothingToGrant.
    """
    authorization = get_pending(session, authorization_id, now)
    scopes = grantable(frozenset(authorization.scopes.split()), user.role)
    if not scopes:
        raise NothingToGrant()
    device = register_device(
        session, user.account_id, authorization.device_serial, authorization.device_model,
        Capabilities.from_json(authorization.device_capabilities), max_devices=max_devices)
    _decide(session, authorization, AuthorizationState.APPROVED, now, user_id=user.id,
            device_id=device.id, scopes=as_text(scopes))
    return authorization


def deny(session: Session, authorization_id: str, user: User, now: float) -> None:
    authorization = get_pending(session, authorization_id, now)
    _decide(session, authorization, AuthorizationState.DENIED, now, user_id=user.id)


def _decide(session: Session, authorization: DeviceAuthorization, state: AuthorizationState,
            now: float, **values: str) -> None:
    decided = session.execute(
        update(DeviceAuthorization)
        .where(DeviceAuthorization.id == authorization.id,
               DeviceAuthorization.state == AuthorizationState.PENDING.value,
               DeviceAuthorization.expires_at > int(now))
        .values(state=state.value, **values)
        .execution_options(synchronize_session=False))
    if getattr(decided, "rowcount", 0) != 1:
        raise NotPending()  # decided in another tab a moment ago; the caller rolls back
    session.refresh(authorization)


def poll(session: Session, client: OAuthClient, device_code: str,
         now: float) -> DeviceAuthorization | OAuthError:
    """The approved authorization (still to be spent), or the error to answer.

    Errors are returned, not raised, so that the caller commits what the poll
    wrote (its time, a longer interval) before answering.
    """
    authorization = session.scalar(select(DeviceAuthorization).where(
        DeviceAuthorization.device_code_hash == hash_device_code(device_code)))
    if authorization is None or authorization.client_id != client.id:
        return invalid_grant("unknown device_code")
    if authorization.state == AuthorizationState.ISSUED:
        return invalid_grant("this device_code was used already")
    if now >= authorization.expires_at:
        return OAuthError("expired_token", "the device_code has expired; start again")
    if authorization.state == AuthorizationState.DENIED:
        return OAuthError("access_denied", "the user denied the request")
    if authorization.state == AuthorizationState.PENDING:
        return _pending_answer(session, authorization, now)
    return authorization


def spend(session: Session, authorization: DeviceAuthorization, grant_id: str) -> bool:
    """Mark the approved code used; False if another poll got there first."""
    spent = session.execute(
        update(DeviceAuthorization)
        .where(DeviceAuthorization.id == authorization.id,
               DeviceAuthorization.state == AuthorizationState.APPROVED.value)
        .values(state=AuthorizationState.ISSUED.value, grant_id=grant_id)
        .execution_options(synchronize_session=False))
    return getattr(spent, "rowcount", 0) == 1


def _pending_answer(session: Session, authorization: DeviceAuthorization,
                    now: float) -> OAuthError:
    row = DeviceAuthorization
    earliest = int(now) - authorization.interval_s + POLL_LEEWAY_S
    on_time = session.execute(
        update(row)
        .where(row.id == authorization.id,
               row.last_polled_at.is_(None) | (row.last_polled_at <= earliest))
        .values(last_polled_at=int(now))
        .execution_options(synchronize_session=False))
    if getattr(on_time, "rowcount", 0) == 1:
        return OAuthError("authorization_pending", "the user has not answered yet")
    session.execute(
        update(row).where(row.id == authorization.id)
        .values(interval_s=row.interval_s + SLOW_DOWN_STEP_S, last_polled_at=int(now))
        .execution_options(synchronize_session=False))
    interval = authorization.interval_s + SLOW_DOWN_STEP_S
    return OAuthError("slow_down", f"poll at most every {interval} seconds")
