"""`stb-origin serve` drains on SIGTERM: it stops taking connections at once, and a
request already in flight (here an upload, half sent) still runs to its answer."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stb_origin.assets.records import Asset
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.support.http import serve_process
from tests.support.media import make_clip

BOUNDARY = "stb-graceful-test"


@pytest.fixture(params=["uvicorn", "granian"])
def server(request: pytest.FixtureRequest, settings: Settings,
           services: Services) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with serve_process(settings, request.param) as running:
        yield running


def _wait_for(condition: object, what: str, timeout: float = 10) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _refuses_connections(base_url: str) -> bool:
    try:
        httpx.get(base_url + "/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False


def test_an_upload_in_flight_completes_after_sigterm(
        tmp_path: Path, settings: Settings, services: Services,
        server: tuple[subprocess.Popen[bytes], str]) -> None:
    require_tools("ffmpeg")
    process, base_url = server
    data = make_clip(tmp_path / "clip.mp4", seconds=1, size="320x180").read_bytes()
    half = len(data) // 2
    rest_may_go = threading.Event()

    def body() -> Iterator[bytes]:
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
               f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n').encode() + data[:half]
        rest_may_go.wait(timeout=30)
        yield data[half:] + f"\r\n--{BOUNDARY}--\r\n".encode()

    answers: list[httpx.Response] = []
    token = services.signer.issue(["assets:write"], subject="graceful-test")
    upload = threading.Thread(target=lambda: answers.append(httpx.post(
        base_url + "/v1/assets", content=body(), timeout=60,
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})))
    upload.start()
    try:
        # The app is writing the first half to its spool file: the request is in flight.
        uploads = settings.work_dir / "uploads"
        _wait_for(lambda: uploads.is_dir() and any(uploads.glob("*.part")), "the upload to start")

        process.send_signal(signal.SIGTERM)
        _wait_for(lambda: _refuses_connections(base_url), "the server to stop listening")
        assert process.poll() is None, "the server exited with a request in flight"
    finally:
        rest_may_go.set()
        upload.join(timeout=60)

    assert len(answers) == 1 and answers[0].status_code == 202, answers and answers[0].text
    # After its graceful shutdown uvicorn re-raises the signal it caught, so the exit
    # status still says "terminated by SIGTERM".
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    with services.db.session() as session:
        asset = session.get(Asset, answers[0].json()["id"])
        assert asset is not None and asset.source_size == len(data)
