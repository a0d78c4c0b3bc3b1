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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

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


ACCESS_LOGGER = "stb_origin.access"
ACCESS_FLUSH_S = 0.5
_BUFFER_BYTES = 64 * 1024


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """JSON lines to a block-buffered stream: access lines (one per request) go out
    together, at most ACCESS_FLUSH_S after they were logged; any other line goes
    out at once, with those before it (``flush_access_lines`` sends the rest).

    Why: every write is a system call that releases the GIL, and under load
    getting it back from the server's other threads cost more than the request
    itself (a third of the key path's throughput, bench/key_delivery.py). What
    a crash can lose: the access lines of the last ACCESS_FLUSH_S, never an
    application line. nginx's ``access_log ... buffer= flush=`` makes the same trade.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stream)
        self._clock = clock
        self._flushed = clock()
        self._urgent = True

    def emit(self, record: logging.LogRecord) -> None:
        self._urgent = record.name != ACCESS_LOGGER or record.levelno > logging.INFO
        super().emit(record)  # writes, then calls flush()

    def flush(self) -> None:
        now = self._clock()
        if self._urgent or now - self._flushed >= ACCESS_FLUSH_S:
            self._flushed = now
            super().flush()

    def flush_now(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._urgent = True
            self.flush()


def flush_access_lines() -> None:
    """Write out the access lines still waiting. The HTTP app calls it every
    ACCESS_FLUSH_S from its event loop, so lines logged just before traffic stops
    go out too (a thread would write while the process forks: a work horse or a
    granian worker could inherit the stream's lock held, and hang on its first line)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, LineHandler):
            handler.flush_now()


def _stderr() -> TextIO:
    """stderr is line-buffered (a write per line): a block-buffered writer over the
    same file descriptor instead (logging.shutdown flushes it at exit)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError):  # replaced by something with no descriptor
        return sys.stderr
    return open(fd, "w", buffering=_BUFFER_BYTES, encoding="utf-8",  # noqa: SIM115
                errors="backslashreplace", closefd=False)


def configure(level: str = "INFO") -> None:
    handler = LineHandler(_stderr())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic lists the plugins it sets up each time it is imported: every process.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
