"""What the service logs, captured in a test: every stb_origin record, formatted as
the service writes it (one JSON object a line) and parsed back."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from stb_origin.observability.logs import JsonFormatter


class JsonLines(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.raw.append(text)
        self.lines.append(json.loads(text))

    def wait_for(self, **fields: object) -> dict[str, object]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if all(line.get(k) == v for k, v in fields.items()):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line with {fields}; got {self.lines}")


@contextmanager
def captured(level: int) -> Iterator[JsonLines]:
    handler = JsonLines(level)
    logger = logging.getLogger("stb_origin")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
