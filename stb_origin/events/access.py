"""Who may listen: the bearer token checked, its caller identified, its audience built.

The same tokens as the REST API. A box (a ``playback`` token bound to a device)
hears its account's entitlement events and its own device's commands; the
content team (``assets:read``) hears asset progress.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from redis.exceptions import RedisError

from stb_origin.accounts.caller import UnknownCaller, identify
from stb_origin.auth import denylist
from stb_origin.events.audience import (
    SCOPES,
    Audience,
    BadSubscription,
    TooManySubscriptions,
    TopicNotAllowed,
)
from stb_origin.events.audience import subscriptions as parse_subscriptions
from stb_origin.services import Services
from stb_origin.web.bearer import check_token, invalid_token
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE


@dataclass(frozen=True)
class Listener:
    audience: Audience
    subject: str
    expires_at: int  # the token's: the connection ends then
    # The deny-list entries that revoke the token (its own, its device's): read at
    # every heartbeat, so that a revoked token's connection ends then.
    deny_names: tuple[str, ...]


async def listener(services: Services, token: str, topics: str | None) -> Listener:
    """Who listens with ``token``, asking for ``topics``; ApiError (401, 403, 400,
    503) when it may not."""

    def check() -> Listener:
        claims = check_token(services.signer, token, SCOPES)
        try:
            with services.db.session() as session:
                caller = identify(session, claims)
        except UnknownCaller as exc:
            raise invalid_token(str(exc)) from None
        try:
            subscribed = parse_subscriptions(topics, claims.scopes)
        except TopicNotAllowed as exc:
            raise ApiError(403, "insufficient_scope", str(exc), NO_STORE) from None
        except TooManySubscriptions as exc:
            raise ApiError(400, "too_many_subscriptions", str(exc), NO_STORE) from None
        except BadSubscription as exc:
            raise ApiError(400, "bad_request", str(exc), NO_STORE) from None
        return Listener(Audience(subscribed, account_id=caller.account_id,
                                 device_id=claims.device_id), claims.subject, claims.expires_at,
                        tuple(denylist.names(claims.token_id, claims.device_id)))

    try:
        return await anyio.to_thread.run_sync(check)
    except RedisError:
        raise ApiError(503, "unavailable", "the event service cannot be reached; retry shortly",
                       {"Retry-After": "5", **NO_STORE}) from None
