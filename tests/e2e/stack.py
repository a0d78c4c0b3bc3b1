"""A running system for end-to-end tests: `stb-origin serve` and `stb-origin worker`
as real processes against real Redis, talking real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-m", "stb_origin.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, data_dir: Path, env: dict[str, str], workers: int = 1) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, "STB_DATA_DIR": str(data_dir), **env}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = data_dir / "logs"

    def start(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes.append(self._spawn("serve", "serve", "--port", str(self.port)))
        for n in range(self.workers):
            self.processes.append(self._spawn(f"worker{n}", "worker"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready:\n" + self.log_tail())

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "wb") as log:
            return subprocess.Popen([*CLI, *args], env=self.env, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL)

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise AssertionError(f"a process exited early:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def token(self, scopes: str, ttl: int = 3600, device: str | None = None) -> str:
        args = [*CLI, "token", "--scope", scopes, "--ttl", str(ttl)]
        if device:
            args += ["--device", device]
        out = subprocess.run(args, env=self.env, capture_output=True, text=True, check=True,
                             timeout=30)
        return out.stdout.strip()

    def upload(self, path: Path, token: str, title: str = "test clip") -> httpx.Response:
        with path.open("rb") as f:
            return httpx.post(self.base_url + "/v1/assets",
                              headers={"Authorization": f"Bearer {token}"},
                              files={"file": (path.name, f, "video/mp4")},
                              data={"title": title}, timeout=60)

    def wait_for(self, asset_id: str, token: str, statuses: tuple[str, ...] = ("ready", "failed"),
                 timeout: float = 240) -> list[dict[str, Any]]:
        """Poll the asset until it reaches one of statuses; returns every state seen."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            response = httpx.get(f"{self.base_url}/v1/assets/{asset_id}",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert response.status_code == 200, response.text
            seen.append(response.json())
            if seen[-1]["status"] in statuses:
                return seen
            time.sleep(0.3)
        raise AssertionError(f"asset {asset_id} stuck at {seen[-1] if seen else None}:\n"
                             + self.log_tail())


@contextmanager
def running(data_dir: Path, redis_url: str, queue_name: str, **env: str) -> Iterator[Stack]:
    """A server and a worker on the test's own Redis database and queue, encoding fast,
    with their own URL as the token issuer; stopped afterwards."""
    stack = Stack(data_dir, {"STB_REDIS_URL": redis_url, "STB_QUEUE_NAME": queue_name,
                             "STB_SEGMENT_SECONDS": "2", "STB_X264_PRESET": "ultrafast", **env})
    stack.env["STB_PUBLIC_BASE_URL"] = stack.base_url
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
