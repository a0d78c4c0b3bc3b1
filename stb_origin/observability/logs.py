"""Structured logs: one JSON object a line, with whatever ids the caller passed.

``context(asset_id=...)`` adds fields to every line logged inside the block
(in this task or thread, and in threads started with its context), so lines
from modules that never heard of the request or asset still carry its ids.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_CONTEXT: ContextVar[MappingProxyType[str, Any]] = ContextVar(
    "stb_log_context", default=MappingProxyType({}))


def bind(**fields: Any) -> Token[MappingProxyType[str, Any]]:
    """Add fields to the current context until ``unbind``; prefer ``context``."""
    return _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **fields}))


def unbind(token: Token[MappingProxyType[str, Any]]) -> None:
    _CONTEXT.reset(token)


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_CONTEXT.get())
        # What the caller passed wins over the surrounding context.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@functools.lru_cache(maxsize=2)
def _second(epoch_s: int) -> str:
    # The access log writes a line per request: format each second once.
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-11-27T10:04:08.123+00:00."""
    second = int(created)
    return f"{_second(second)}.{int((created - second) * 1000):03d}+00:00"


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic lists the plugins it sets up each time it is imported: every process.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
