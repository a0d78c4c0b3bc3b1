"""A real receiver on 127.0.0.1 that checks signatures with the README's own verifier,
settings that let webhooks reach it, and helpers to publish events and run attempts."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rq import SimpleWorker
from starlette.applications import Starlette

from stb_origin.app import create_app
from stb_origin.queues import webhook_queue
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.workers import jobs
from tests.conftest import ENGINES, on_engine
from tests.support.http import run_server

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verifier() -> Callable[..., bool]:
    """The ``verify`` function exactly as the README's Webhooks section prints it."""
    section = README.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert found is not None, "the README's Webhooks section has no Python verifier"
    namespace: dict[str, Any] = {}
    exec(found.group(1), namespace)  # noqa: S102 - the README's own code, on purpose
    verify: Callable[..., bool] = namespace["verify"]
    return verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class Receiver:
    """What it got, and the statuses it answers with next (then 200)."""

    url: str
    secret: str = ""
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int, timeout_s: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            assert time.monotonic() < deadline, (
                f"the receiver got {len(self.received)} of {count} deliveries")
            self.arrived.wait(0.05)
            self.arrived.clear()
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    verify = readme_verifier()
    box = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(Received(self.path, dict(self.headers.items()), body,
                                         verify(box.secret, self.headers, body)))
            status = box.answers.pop(0) if box.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            box.arrived.set()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hook?src=stb"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def local_settings(settings: Settings) -> Settings:
    """Settings whose webhooks may reach the receiver, retrying at once."""
    return dataclasses.replace(settings, webhooks_allow_private=True, webhooks_allow_http=True,
                               webhooks_backoff_s=0.001, webhooks_timeout_s=5.0)


@pytest.fixture(params=ENGINES)
def hook_services(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Services]:
    """Services on each engine in turn, allowed to reach 127.0.0.1; the job functions
    run with them."""
    built = build_services(local_settings(on_engine(request, settings)))
    jobs.use_settings(built.settings)
    yield built
    jobs.use_settings(None)
    built.close()


@pytest.fixture
def local_services(settings: Settings) -> Iterator[Services]:
    """As hook_services, on SQLite only (the HTTP API's tests)."""
    built = build_services(local_settings(settings))
    jobs.use_settings(built.settings)
    yield built
    jobs.use_settings(None)
    built.close()


@pytest.fixture
def local_app(local_services: Services) -> Starlette:
    return create_app(local_services)


@pytest.fixture
def hook_api(local_app: Starlette) -> Iterator[str]:
    with run_server(local_app) as base_url:
        yield base_url


@pytest.fixture
def operator(local_services: Services) -> str:
    return local_services.signer.issue(["admin"])


def call(api: str, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, api + path, headers=headers, timeout=30, **kwargs)


class BurstWorker(SimpleWorker):
    """RQ's in-process worker without its pubsub thread (remote commands: none in a
    burst), whose stop can wait out RQ's 60 s poll (see workers.worker.unsubscribe)."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_attempts(services: Services) -> None:
    """Every queued webhook attempt, run now in this process (as a worker would)."""
    BurstWorker([webhook_queue(services.redis, services.settings)], connection=services.redis).work(
        burst=True, with_scheduler=False)


@contextmanager
def changed(services: Services, **settings: Any) -> Iterator[Services]:
    """Services with some settings changed, which the job functions use meanwhile."""
    other = build_services(dataclasses.replace(services.settings, **settings))
    jobs.use_settings(other.settings)
    try:
        yield other
    finally:
        jobs.use_settings(services.settings)
        other.close()
