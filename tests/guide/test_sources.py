"""Guide sources fetched from a real HTTP server on 127.0.0.1, on their schedule."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from stb_origin.guide.models import GuideSource, Programme
from stb_origin.guide.sources import GuidePoller, new_source
from stb_origin.services import Services
from tests.guide.conftest import Show, document, make_channel


class Files:
    """What the server answers per path: (status, headers, body); and what was asked."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[str] = []


@pytest.fixture
def files() -> Iterator[tuple[Files, str]]:
    served = Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            served.requests.append(self.path)
            status, headers, body = served.answers.get(self.path, (404, {}, b"no"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


GUIDE = document([Show("one", "20260615200000 +0100", "20260615210000 +0100", "Evening"),
                  Show("one", "20260615210000 +0100", "20260615220000 +0100", "Night")])


def _add(services: Services, url: str, now: datetime, refresh_s: int = 3600) -> str:
    with services.db.session() as session:
        source = new_source(url, refresh_s, now)
        session.add(source)
        return source.id


def _source(services: Services, source_id: str) -> GuideSource:
    with services.db.session() as session:
        source = session.get(GuideSource, source_id)
        assert source is not None
        return source


def _programmes(services: Services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Programme)) or 0


def test_a_source_is_fetched_when_due_and_then_every_interval(
        services: Services, files: tuple[Files, str]) -> None:
    served, base = files
    served.answers["/guide.xml"] = (200, {"Content-Type": "application/xml"}, GUIDE)
    make_channel(services, "One", xmltv_id="one")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    source_id = _add(services, base + "/guide.xml", now, refresh_s=3600)
    poller = GuidePoller(services)

    assert poller.run_once(now) == 1
    source = _source(services, source_id)
    assert source.last_status == "ok" and source.last_error is None
    assert source.last_report is not None and source.last_report["imported"] == 2
    assert source.next_fetch_at == now + timedelta(hours=1)
    assert _programmes(services) == 2
    # Not due yet: nothing fetched, however often the poller looks.
    assert poller.run_once(now + timedelta(minutes=1)) == 0
    assert poller.run_once(now + timedelta(minutes=59)) == 0
    assert served.requests == ["/guide.xml"]
    # Due again: fetched again, and the import changes nothing (it replaces its span).
    assert poller.run_once(now + timedelta(hours=1)) == 1
    assert served.requests == ["/guide.xml", "/guide.xml"]
    assert _source(services, source_id).last_report == {**source.last_report, "replaced": 2}
    assert _programmes(services) == 2
    # Two replicas polling at once: the claim gives the fetch to one.
    other = GuidePoller(services)
    assert poller.run_once(now + timedelta(hours=2)) + other.run_once(
        now + timedelta(hours=2)) == 1


def test_a_gzipped_guide_is_read(services: Services, files: tuple[Files, str]) -> None:
    served, base = files
    served.answers["/guide.xml.gz"] = (200, {"Content-Type": "application/gzip"},
                                       gzip.compress(GUIDE))
    make_channel(services, "One", xmltv_id="one")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    source_id = _add(services, base + "/guide.xml.gz", now)
    GuidePoller(services).run_once(now)
    assert _source(services, source_id).last_status == "ok"
    assert _programmes(services) == 2


@pytest.mark.parametrize(("path", "answer", "code"), [
    ("/missing.xml", None, "http_error"),
    ("/to-file", (302, {"Location": "file:///etc/passwd"}, b""), "bad_redirect"),
    ("/to-ftp", (301, {"Location": "ftp://127.0.0.1/guide.xml"}, b""), "bad_redirect"),
    ("/big.xml", (200, {}, GUIDE + b"<!--" + b"x" * 5000 + b"-->"), "too_large"),
    ("/bomb.gz", (200, {}, gzip.compress(b" " * 1_000_000)), "too_large"),
    ("/broken.xml", (200, {}, GUIDE.replace(b"</tv>", b"")), "invalid_xml"),
])
def test_a_failed_fetch_is_recorded_and_tried_again_sooner(
        services: Services, files: tuple[Files, str], path: str,
        answer: tuple[int, dict[str, str], bytes] | None, code: str) -> None:
    served, base = files
    if answer is not None:
        served.answers[path] = answer
    make_channel(services, "One", xmltv_id="one")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    source_id = _add(services, base + path, now, refresh_s=6 * 3600)
    GuidePoller(services, max_bytes=len(GUIDE) + 1000).run_once(now)
    source = _source(services, source_id)
    assert source.last_status == "failed"
    assert source.last_error is not None and source.last_error["code"] == code
    assert source.next_fetch_at == now + timedelta(minutes=10)
    assert _programmes(services) == 0
    assert "root:" not in str(source.last_error)


def test_fetch_now_over_the_api(api: str, services: Services, files: tuple[Files, str],
                                operator: str) -> None:
    served, base = files
    served.answers["/guide.xml"] = (200, {}, GUIDE)
    make_channel(services, "One", xmltv_id="one")
    auth = {"Authorization": f"Bearer {operator}"}
    created = httpx.post(api + "/v1/guide/sources", json={"url": base + "/guide.xml"},
                         headers=auth, timeout=30).json()
    fetched = httpx.post(api + f"/v1/guide/sources/{created['id']}/fetch", headers=auth,
                         timeout=30)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["last_status"] == "ok"
    assert fetched.json()["last_report"]["imported"] == 2
    # The fetched file is gone.
    assert not list((services.settings.work_dir / "uploads").glob("*.part"))
