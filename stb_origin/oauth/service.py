"""What the OAuth endpoints do, below HTTP: synchronous, one transaction per step.

Each function takes the parsed form and the client's credentials, raises
OAuthError for the answer the RFCs prescribe, and touches Redis (the
deny-list) only after its transaction has committed.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from typing import Any

from stb_origin import ratelimit
from stb_origin.accounts.devices import is_device_active
from stb_origin.oauth import device_flow, issuance, refresh, revocation, scopes
from stb_origin.oauth.client_auth import Credentials, authenticate
from stb_origin.oauth.device_flow import DeviceInfo
from stb_origin.oauth.errors import (
    OAuthError,
    invalid_grant,
    invalid_request,
    unauthorized_client,
)
from stb_origin.oauth.issuance import TokenSet
from stb_origin.oauth.models import GrantType, OAuthClient
from stb_origin.oauth.usercode import display
from stb_origin.services import Services

log = logging.getLogger("stb_origin.oauth")


# Checking a client secret costs a scrypt hash (16 MiB, tens of ms): attempts with
# a secret are bounded per client, so guessing cannot also load the server. A
# service asks for a token every few minutes; this is far above that.
SECRET_ATTEMPTS_PER_MINUTE = 20


def _client(services: Services, credentials: Credentials, now: float) -> OAuthClient:
    if credentials.secret is not None:
        retry = ratelimit.hit(services.redis, f"oauth:client-secret:{credentials.client_id}",
                              SECRET_ATTEMPTS_PER_MINUTE, 60, clock=lambda: now)
        if retry is not None:
            raise OAuthError("invalid_client", "too many authentication attempts; retry later",
                             429, {"Retry-After": str(max(1, math.ceil(retry)))})
    with services.db.session() as session:
        return authenticate(session, credentials)


def _require(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise invalid_request(f"{name} is required")
    return value


def authorize_device(services: Services, credentials: Credentials, form: dict[str, str],
                     now: float) -> dict[str, Any]:
    """RFC 8628 §3.1–3.2: a device code for the box, a user code for its owner."""
    client = _client(services, credentials, now)
    if not client.allows(GrantType.DEVICE_CODE):
        raise unauthorized_client("this client may not use the device grant")
    wanted = scopes.requested(client, form.get("scope"))
    device = DeviceInfo.from_form(form)
    settings = services.settings
    with services.db.session() as session:
        started = device_flow.start(session, client, wanted, device, settings.device_code_ttl_s,
                                    settings.device_poll_interval_s, now)
    authorization = started.authorization
    log.info("device authorization started", extra={
        "client_id": client.id, "authorization_id": authorization.id})
    verification_uri = settings.public_base_url.rstrip("/") + "/device"
    user_code = display(authorization.user_code)
    return {
        "device_code": started.device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={user_code}",
        "expires_in": settings.device_code_ttl_s,
        "interval": authorization.interval_s,
    }


def exchange(services: Services, credentials: Credentials, form: dict[str, str],
             now: float) -> TokenSet:
    """The token endpoint (RFC 6749 §4.4, §6; RFC 8628 §3.4)."""
    grant_type = _require(form, "grant_type")
    try:
        grant = GrantType(grant_type)
    except ValueError:
        raise OAuthError("unsupported_grant_type", "this server does not know this grant type"
                         ) from None
    client = _client(services, credentials, now)
    if not client.allows(grant):
        raise unauthorized_client("this client may not use this grant type")
    return _GRANTS[grant](services, client, form, now)


def _device_code(services: Services, client: OAuthClient, form: dict[str, str],
                 now: float) -> TokenSet:
    device_code = _require(form, "device_code")
    with services.db.session() as session:
        outcome = device_flow.poll(session, client, device_code, now)
        if isinstance(outcome, OAuthError):
            refused = outcome  # committed: the poll's time and interval count
        elif outcome.user_id is None or outcome.device_id is None:
            raise AssertionError("an approved authorization has a user and a device")
        elif not is_device_active(session, outcome.device_id):
            refused = OAuthError("access_denied", "the device was removed from the account")
        else:
            grant_id = secrets.token_hex(16)
            granted = frozenset(outcome.scopes.split())
            minted = issuance.mint(services.signer, grant_id, client.id, outcome.user_id,
                                   outcome.device_id, granted, granted)
            if not device_flow.spend(session, outcome, grant_id):
                refused = invalid_grant("this device_code was used already")
            else:
                issuance.open_grant(session, minted, grant_id, client.id, outcome.user_id,
                                    outcome.device_id, granted, now)
                log.info("device signed in", extra={
                    "client_id": client.id, "user_id": outcome.user_id,
                    "device_id": outcome.device_id, "grant_id": grant_id})
                return minted.tokens
    raise refused


def _refresh_token(services: Services, client: OAuthClient, form: dict[str, str],
                   now: float) -> TokenSet:
    token = _require(form, "refresh_token")
    try:
        with services.db.session() as session:
            return refresh.rotate(session, services.signer, client, token, form.get("scope"),
                                  now)
    except refresh.EndGrant as ended:
        # Rolled back above; the revocation commits on its own.
        _end_grant(services, ended.grant_id, now)
        log.warning("grant revoked", extra={"client_id": client.id, "grant_id": ended.grant_id,
                                            "reason": ended.description})
        raise invalid_grant(ended.description) from None


def _client_credentials(services: Services, client: OAuthClient, form: dict[str, str],
                        now: float) -> TokenSet:
    return issuance.for_client(services.signer, client, scopes.requested(client,
                                                                          form.get("scope")))


_GRANTS: dict[GrantType, Callable[[Services, OAuthClient, dict[str, str], float], TokenSet]] = {
    GrantType.DEVICE_CODE: _device_code,
    GrantType.REFRESH_TOKEN: _refresh_token,
    GrantType.CLIENT_CREDENTIALS: _client_credentials,
}


def revoke(services: Services, credentials: Credentials, form: dict[str, str],
           now: float) -> None:
    """RFC 7009 §2: the same answer whether or not the token was known."""
    token = _require(form, "token")
    client = _client(services, credentials, now)
    with services.db.session() as session:
        denials = revocation.revoke(session, services.signer, client, token,
                                    form.get("token_type_hint"), now)
    issuance.deny(services.redis, denials)
    if denials:
        log.info("tokens revoked", extra={"client_id": client.id, "count": len(denials)})


def _end_grant(services: Services, grant_id: str, now: float) -> None:
    with services.db.session() as session:
        denials = issuance.revoke_grant(session, grant_id, now)
    issuance.deny(services.redis, denials)
