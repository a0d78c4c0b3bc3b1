"""Column types and ids every table shares: aware UTC times, 128-bit hex ids."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, Dialect, TypeDecorator

# Every id (assets, users, devices, ...): 128 random bits, hex, safe in paths and URLs.
ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    return secrets.token_hex(16)


def new_ids(count: int) -> list[str]:
    """``count`` new ids from one read of the system's randomness: new_id is a
    system call each, too many for a batch of thousands."""
    block = secrets.token_hex(16 * count)
    return [block[start:start + 32] for start in range(0, 32 * count, 32)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every engine.

    SQLite keeps no offset: values are normalised to UTC before they are stored
    so that its text comparisons order them correctly, and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: a time zone is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None
