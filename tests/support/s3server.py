"""A real S3-compatible server for tests: ``moto_server`` on a free 127.0.0.1 port.

    server = start_moto()          # or: with moto() as server:
    settings = Settings(storage_url="s3://bucket", **server.settings_fields())
    ...
    server.stop()

moto keeps everything in memory and accepts any credentials.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

INSTALL_HINT = 'moto_server not found; install it with: pip install "moto[server]"'
STARTUP_TIMEOUT_S = 30.0
ACCESS_KEY = "moto-access"
SECRET_KEY = "moto-secret-key"
REGION = "us-east-1"


class MotoMissing(RuntimeError):
    pass


def moto_command() -> list[str]:
    # The venv's bin folder is not always on PATH (".venv/bin/pytest").
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    raise MotoMissing(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)

    @property
    def endpoint(self) -> str:
        """host:port, the form of ``Settings.s3_endpoint``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def settings_fields(self) -> dict[str, Any]:
        return {"s3_endpoint": self.endpoint, "s3_access_key": ACCESS_KEY,
                "s3_secret_key": SECRET_KEY, "s3_region": REGION, "s3_secure": False}

    def log_tail(self, limit: int = 4000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_moto() -> MotoServer:
    command = moto_command()
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - owned by MotoServer, closed in stop()
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        server = MotoServer(port, process, log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(server.url):
                return server
            time.sleep(0.1)
        tail = server.log_tail()
        server.stop()
        if "Address already in use" not in tail:
            raise RuntimeError(f"moto_server did not start on port {port}:\n{tail}")
    raise RuntimeError("moto_server could not find a free port")


@contextmanager
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()
