"""Who a connection is and what it subscribed to: which events it may hear.

A subscription is a topic (``assets``) or a topic and the one thing it follows
(``assets:<id>``). A token's scopes decide the topics it may have; events meant
for an account or a device reach that account's or device's connections only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stb_origin import eventlog, scopes

# Which scopes may hear each topic.
TOPIC_SCOPES = {
    eventlog.ASSETS: frozenset({scopes.ASSETS_READ}),
    eventlog.CHANNELS: frozenset({scopes.ASSETS_READ, scopes.PLAYBACK}),
    eventlog.ENTITLEMENTS: frozenset({scopes.PLAYBACK}),
    eventlog.COMMANDS: frozenset({scopes.PLAYBACK}),
    eventlog.CATALOG: frozenset({scopes.PLAYBACK}),
    eventlog.GUIDE: frozenset({scopes.PLAYBACK}),
}
# The scopes that open GET /v1/events at all.
SCOPES = frozenset().union(*TOPIC_SCOPES.values())
MAX_SUBSCRIPTIONS = 16
MAX_TOPICS_TEXT = 2048
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")

# (topic, key): key None hears the whole topic
Subscription = tuple[str, str | None]


class BadSubscription(ValueError):
    """The topics asked for cannot be read."""


class TooManySubscriptions(BadSubscription):
    pass


class TopicNotAllowed(BadSubscription):
    pass


@dataclass(frozen=True)
class Audience:
    subscriptions: frozenset[Subscription]
    account_id: str | None = None
    device_id: str | None = None

    def hears(self, event: eventlog.Event) -> bool:
        if event.device is not None and event.device != self.device_id:
            return False
        if event.account is not None and event.account != self.account_id:
            return False
        return ((event.topic, None) in self.subscriptions
                or (event.key is not None and (event.topic, event.key) in self.subscriptions))


def subscriptions(asked: str | None, token_scopes: frozenset[str]) -> frozenset[Subscription]:
    """The subscriptions in ``asked`` ("assets,channels:<id>"); none asked: every
    topic the scopes allow. BadSubscription (or a subclass) for the refused."""
    allowed = {topic for topic, needs in TOPIC_SCOPES.items() if needs & token_scopes}
    if asked is None or not asked.strip():
        return frozenset((topic, None) for topic in allowed)
    if len(asked) > MAX_TOPICS_TEXT:
        raise TooManySubscriptions(f"topics: at most {MAX_TOPICS_TEXT} characters")
    items = [item.strip() for item in asked.split(",") if item.strip()]
    if len(items) > MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions(f"topics: at most {MAX_SUBSCRIPTIONS} subscriptions"
                                   " a connection")
    found: set[Subscription] = set()
    for item in items:
        topic, colon, key = item.partition(":")
        if topic not in eventlog.TOPICS:
            raise BadSubscription("topics: unknown topic; known: "
                                  + ", ".join(sorted(eventlog.TOPICS)))
        if colon and not _KEY.fullmatch(key):
            raise BadSubscription("topics: a key is 1 to 64 letters, digits, _ or -")
        if topic not in allowed:
            raise TopicNotAllowed(f"topics: this token may not read {topic!r}")
        found.add((topic, key if colon else None))
    return frozenset(found)
