"""What the account services refuse; the HTTP edge maps each to a status."""

from __future__ import annotations


class InvalidValue(ValueError):
    """A value the domain does not accept (a malformed email, an empty window...)."""


class NotFound(LookupError):
    """A referenced account, user, device, package, asset or entitlement does not exist."""


class AlreadyExists(Exception):
    """A unique thing (an email, a package name) is taken."""


class DeviceLimitReached(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the account already has {limit} active devices; revoke one first")
        self.limit = limit
