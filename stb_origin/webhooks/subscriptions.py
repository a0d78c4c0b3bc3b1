"""Subscriptions: a target URL, the event types it wants, an active flag, a secret.

The URL is checked by the caller (``targets``: it needs the settings and DNS);
this module keeps rows. The secret is made here, stored only sealed, and handed
back once: at creation and at each rotation.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import NotFound
from stb_origin.db.paging import newest_first
from stb_origin.db.types import new_id
from stb_origin.envelope import Envelope
from stb_origin.webhooks import signing
from stb_origin.webhooks.event_types import EVENT_TYPES
from stb_origin.webhooks.models import Webhook

# Each event becomes one delivery per subscriber: the cap keeps that bounded.
MAX_WEBHOOKS = 100


class TooMany(Exception):
    pass


def check_events(value: object) -> list[str]:
    """A non-empty list of known event types, each once, in the order given; ValueError."""
    if not isinstance(value, list) or not value:
        raise ValueError("events: a non-empty list of event types")
    if len(value) > len(EVENT_TYPES) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"events: at most {len(EVENT_TYPES)} event type names")
    unknown = [item for item in value if item not in EVENT_TYPES]
    if unknown:
        # repr() of the first only: what the caller sent may be long.
        raise ValueError(f"events: unknown event type {unknown[0][:64]!r};"
                         f" known: {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))


def create(session: Session, envelope: Envelope, url: str, events: list[str],
           active: bool) -> tuple[Webhook, str]:
    if (session.scalar(select(func.count()).select_from(Webhook)) or 0) >= MAX_WEBHOOKS:
        raise TooMany(f"at most {MAX_WEBHOOKS} webhooks")
    webhook_id = new_id()
    secret = signing.new_secret()
    webhook = Webhook(id=webhook_id, url=url, events=events, active=active,
                      wrapped_secret=signing.seal(envelope, webhook_id, secret))
    session.add(webhook)
    session.flush()
    return webhook, secret


def get(session: Session, webhook_id: str) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("no such webhook")
    return webhook


def update(session: Session, webhook_id: str, *, url: str | None = None,
           events: list[str] | None = None, active: bool | None = None) -> Webhook:
    webhook = get(session, webhook_id)
    if url is not None:
        webhook.url = url
    if events is not None:
        webhook.events = events
    if active is not None:
        webhook.active = active
    session.flush()
    return webhook


def delete(session: Session, webhook_id: str) -> None:
    session.delete(get(session, webhook_id))


def rotate_secret(session: Session, envelope: Envelope, webhook_id: str) -> tuple[Webhook, str]:
    """A new secret, signing from the next attempt on; the old one is gone."""
    webhook = get(session, webhook_id)
    secret = signing.new_secret()
    webhook.wrapped_secret = signing.seal(envelope, webhook_id, secret)
    session.flush()
    return webhook, secret


def page(session: Session, limit: int, after: str | None) -> list[Webhook]:
    return newest_first(session, Webhook, select(Webhook), limit, after)


def subscribers(session: Session) -> dict[str, list[str]]:
    """Event type -> ids of the active webhooks that want it."""
    wanted: dict[str, list[str]] = {}
    for webhook_id, events in session.execute(
            select(Webhook.id, Webhook.events).where(Webhook.active.is_(True))):
        for name in events:
            wanted.setdefault(name, []).append(webhook_id)
    return wanted
