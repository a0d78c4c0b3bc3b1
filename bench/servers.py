"""Real servers for the HTTP benchmarks, on free 127.0.0.1 ports, stopped by their pid.

A private redis-server, `stb-origin serve` (uvicorn) or the same app under granian,
nginx (static files or a proxy_cache CDN) and moto_server. Every start waits
for the server with a deadline; every stop signals only the process it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require(tool: str, install: str) -> str:
    found = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                   else None)
    if not found:
        raise SystemExit(f"{tool} not found: {install}")
    return found


def wait_http(url: str, process: subprocess.Popen[bytes] | None = None,
              timeout: float = STARTUP_TIMEOUT_S, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited early ({process.returncode}) for {url}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except urllib.error.HTTPError:
            return  # it answers: that is all we wait for
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:g} s")


class Process:
    """One child process with its log file, in a process group of its own.

    stop() signals that group only: the process and what it started (nginx's
    and granian's workers; a granian worker can outlive its main process).
    """

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(list(argv), stdout=out, stderr=out,
                                          stdin=subprocess.DEVNULL, cwd=cwd,
                                          env=dict(env) if env is not None else None,
                                          start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 15) -> None:
        group = self.popen.pid  # the session leader's pid is its group's id
        if self.popen.poll() is None:
            self._signal_group(group, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Whatever is left of the group (the main process too, if it hung).
        self._signal_group(group, signal.SIGKILL)
        self.popen.wait(timeout=timeout)

    @staticmethod
    def _signal_group(group: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)


def start_redis(work: Path, cpu: int | None = None) -> tuple[Process, str]:
    """cpu: pin it there (off the core a benchmark gives the server under test)."""
    exe = require("redis-server", "apt-get install -y redis-server")
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    pin = [require("taskset", "apt-get install -y util-linux"), "-c", str(cpu)] if (
        cpu is not None) else []
    process = Process("redis", [*pin, exe, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(work)],
                      work)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    process.stop()
    raise RuntimeError("redis-server did not start")


def stb_env(settings_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STB_")}
    return {**env, **settings_env}


PYEXTRA = BENCH / "out" / "pyextra"
PYEXTRA_HINT = (f".venv/bin/pip install --target {PYEXTRA} httptools uvloop"
                " (uvicorn[standard]'s extras, kept out of the project's venv)")


def start_uvicorn(env: Mapping[str, str], log_dir: Path, name: str = "origin-uvicorn",
                  standard: bool = False) -> tuple[Process, int]:
    """`stb-origin serve`, exactly as deployed (uvicorn, one process). standard: with
    httptools and uvloop importable, which uvicorn then picks (uvicorn[standard])."""
    port = free_port()
    if standard:
        if not (PYEXTRA / "httptools").exists():
            raise SystemExit(f"httptools/uvloop not found: {PYEXTRA_HINT}")
        env = {**env, "PYTHONPATH": str(PYEXTRA)}
    process = Process(name, [sys.executable, "-m", "stb_origin.cli", "serve",
                             "--port", str(port)], log_dir, env=env, cwd=REPO)
    wait_http(f"http://127.0.0.1:{port}/healthz", process.popen, log=process.log)
    return process, port


def _granian() -> str:
    exe = Path(sys.executable).with_name("granian")
    if not exe.exists():
        raise SystemExit("granian not found: .venv/bin/pip install granian")
    return str(exe)


def start_granian(env: Mapping[str, str], log_dir: Path, name: str = "origin-granian",
                  target: str = "asgi_factory:create", root: Path = REPO,
                  cpu: int | None = None) -> tuple[Process, int]:
    """The same app under granian (ASGI, one worker), built by bench/asgi_factory.py.
    root: the source tree to run (another commit's, unpacked); cpu: pin the server
    (main process and worker) to that one CPU."""
    port = free_port()
    pin = [require("taskset", "apt-get install -y util-linux"), "-c", str(cpu)] if (
        cpu is not None) else []
    process = Process(name, [*pin, _granian(), "--interface", "asgi", "--factory",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--no-access-log", target],
                      log_dir, env={**env, "PYTHONPATH": f"{root / 'bench'}:{root}"},
                      cwd=root / "bench")
    wait_http(f"http://127.0.0.1:{port}/healthz", process.popen, log=process.log)
    return process, port


def start_bare_uvicorn(env: Mapping[str, str], log_dir: Path, name: str = "bare-uvicorn"
                       ) -> tuple[Process, int]:
    """asgi_factory:bare under uvicorn with the settings `stb-origin serve` uses."""
    port = free_port()
    process = Process(name, [sys.executable, "-m", "uvicorn", "--factory", "asgi_factory:bare",
                             "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                             "--no-server-header", "--log-level", "warning"],
                      log_dir, env={**env, "PYTHONPATH": f"{BENCH}:{REPO}"}, cwd=BENCH)
    wait_http(f"http://127.0.0.1:{port}/healthz", process.popen, log=process.log)
    return process, port


def start_moto(log_dir: Path) -> tuple[Process, int]:
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        if not found:
            raise SystemExit('moto_server not found: .venv/bin/pip install "moto[server]"')
        exe = Path(found)
    port = free_port()
    process = Process("moto", [str(exe), "-H", "127.0.0.1", "-p", str(port)], log_dir)
    wait_http(f"http://127.0.0.1:{port}/", process.popen, log=process.log)
    return process, port


NGINX_TYPES = """
    types {
        application/vnd.apple.mpegurl m3u8;
        video/mp4 mp4;
        video/iso.segment m4s;
        video/mp2t ts;
    }
    default_type application/octet-stream;
"""


class Nginx:
    """nginx in the foreground with a config written for it, under its own prefix."""

    def __init__(self, name: str, conf: str, prefix: Path) -> None:
        self.exe = require("nginx", "apt-get install -y nginx")
        self.name = name
        self.prefix = prefix
        self.conf = conf
        self.process: Process | None = None

    def start(self, check_url: str) -> None:
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        path = self.prefix / "nginx.conf"
        path.write_text(self.conf)
        self.process = Process(self.name, [self.exe, "-p", str(self.prefix), "-c", str(path),
                                           "-e", str(self.prefix / "logs" / "error.log"),
                                           "-g", "daemon off;"], self.prefix)
        wait_http(check_url, self.process.popen, log=self.prefix / "logs" / "error.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
