"""Every scope a token can carry: what each opens, and the one place they are spelled."""

from __future__ import annotations

ASSETS_WRITE = "assets:write"  # upload, delete
ASSETS_READ = "assets:read"  # status, listing
PLAYBACK = "playback"  # content keys, playback URLs
ACCOUNT = "account"  # one's own account and devices
ADMIN = "admin"  # users, packages, entitlements, key audit: for admins and the operator

ALL = frozenset({ASSETS_WRITE, ASSETS_READ, PLAYBACK, ACCOUNT, ADMIN})
# What a subscriber may hand a box.
SUBSCRIBER = frozenset({PLAYBACK, ACCOUNT})
# What the content team works with.
EDITOR = SUBSCRIBER | {ASSETS_READ, ASSETS_WRITE}
