"""JSON log lines and the ids the surrounding context adds to them."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from stb_origin import pipeline
from stb_origin.ingest.service import accept_source
from stb_origin.observability import logs
from stb_origin.observability.logs import ACCESS_FLUSH_S, ACCESS_LOGGER, JsonFormatter, LineHandler
from tests.support.clock import ManualClock
from tests.support.logs import JsonLines, captured


def _format(record_logger: str, msg: str, **extra: object) -> dict[str, object]:
    record = logging.getLogger(record_logger).makeRecord(
        record_logger, logging.INFO, __file__, 1, msg, (), None, extra=extra)
    return dict(json.loads(logs.JsonFormatter().format(record)))


def test_context_fields_join_every_line_and_explicit_fields_win():
    assert "asset_id" not in _format("x", "before")
    with logs.context(request_id="r1", asset_id="a" * 32):
        line = _format("x", "inside", code="too_short")
        assert (line["request_id"], line["asset_id"], line["code"]) == ("r1", "a" * 32,
                                                                         "too_short")
        with logs.context(asset_id="b" * 32):
            assert _format("x", "nested")["asset_id"] == "b" * 32
        assert _format("x", "explicit", asset_id="c" * 32)["asset_id"] == "c" * 32
    assert "request_id" not in _format("x", "after")


def test_context_stays_in_its_own_thread():
    seen: list[dict[str, object]] = []
    with logs.context(asset_id="a" * 32):
        thread = threading.Thread(target=lambda: seen.append(_format("x", "other thread")))
        thread.start()
        thread.join()
    assert "asset_id" not in seen[0]


@pytest.fixture
def records() -> Iterator[JsonLines]:
    with captured(logging.DEBUG) as lines:
        yield lines


def test_every_pipeline_line_carries_the_asset_id(services, tmp_path, records, monkeypatch):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 4000)
    asset_id = str(accept_source(services, fake, ".mp4", "fake", fake.stat().st_size)["id"])
    real_probe = pipeline.probe

    def probe_that_logs(*args, **kwargs):  # type: ignore[no-untyped-def]
        # A module that knows nothing about assets logs during the run.
        logging.getLogger("stb_origin.transcode.probe").info("probing")
        return real_probe(*args, **kwargs)

    monkeypatch.setattr(pipeline, "probe", probe_that_logs)
    records.lines.clear()
    assert pipeline.process(services, asset_id) == "failed"
    assert {line["msg"] for line in records.lines} >= {"probing", "asset failed"}
    assert all(line.get("asset_id") == asset_id for line in records.lines), records.lines


class _Stream(io.StringIO):
    """What reached the file: the text written before each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = ""

    def flush(self) -> None:
        self.flushed = self.getvalue()


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 0, msg, (), None)


def test_access_lines_go_out_together_and_other_lines_at_once() -> None:
    clock = ManualClock()
    stream = _Stream()
    handler = LineHandler(stream, clock=clock)
    handler.setFormatter(JsonFormatter())

    handler.handle(_record(ACCESS_LOGGER, logging.INFO, "request 1"))
    handler.handle(_record(ACCESS_LOGGER, logging.INFO, "request 2"))
    assert stream.flushed == "", "access lines wait for the next flush"
    handler.handle(_record("stb_origin.pipeline", logging.INFO, "asset ready"))
    assert [json.loads(line)["msg"] for line in stream.flushed.splitlines()] == [
        "request 1", "request 2", "asset ready"], "an application line takes them along"

    handler.handle(_record(ACCESS_LOGGER, logging.INFO, "request 3"))
    assert "request 3" not in stream.flushed
    clock.advance(ACCESS_FLUSH_S)
    handler.handle(_record(ACCESS_LOGGER, logging.INFO, "request 4"))
    assert "request 4" in stream.flushed, "at most ACCESS_FLUSH_S late under traffic"

    handler.handle(_record(ACCESS_LOGGER, logging.INFO, "request 5"))
    handler.flush_now()  # what the app does every ACCESS_FLUSH_S when traffic stops
    assert "request 5" in stream.flushed
    handler.handle(_record(ACCESS_LOGGER, logging.ERROR, "request 6 failed"))
    assert "request 6" in stream.flushed, "an access error goes out at once"
