"""The README's first command: `stb-origin dev` on a fresh data dir starts everything
and prints commands that work as printed, among them one that plays the encrypted
sample through the real entitlement checks."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import require_tools
from tests.e2e.player import play
from tests.e2e.stack import CLI, free_port

START_TIMEOUT_S = 180
_readers: dict[int, threading.Thread] = {}  # pid -> the thread collecting its output


def _start(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STB_")}
    env["STB_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen([*CLI, "dev", "--port", str(port)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _readers[process.pid] = reader
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(line.startswith("Running.") for line in lines):
        assert process.poll() is None, "\n".join(lines)
        assert time.monotonic() < deadline, "dev did not come up:\n" + "\n".join(lines)
        time.sleep(0.2)
    return process, lines


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _readers.pop(process.pid).join(timeout=10)  # it ends at the pipe's end
        assert process.stdout is not None
        process.stdout.close()


def _printed(lines: list[str], label: str) -> str:
    found = [line.split(":", 1)[1].strip() for line in lines
             if line.strip().startswith(label + ":")]
    assert found, f"no {label!r} line in:\n" + "\n".join(lines)
    return found[0]


def test_dev_plays_the_encrypted_sample_as_printed(tmp_path: Path) -> None:
    require_tools("ffmpeg", "ffprobe", "redis-server", "curl")
    port = free_port()
    process, lines = _start(tmp_path / "data", port)
    try:
        url = _printed(lines, "sample")
        # The printed decode command, run as printed: every frame decrypts.
        decode = subprocess.run(shlex.split(_printed(lines, "decode")), capture_output=True,
                                text=True, timeout=120, check=False)
        assert decode.returncode == 0 and decode.stderr == "", decode.stderr
        token = _printed(lines, "play it").split("Bearer ", 1)[1].split("'", 1)[0]
        result = play(url, token)
        assert result.returncode == 0 and result.video_frames > 0, result.errors
        # Without the token the key is refused, so nothing decodes.
        assert play(url, None).video_frames == 0
        # The device-flow step 1, as printed, starts a sign-in.
        step_one = next(line for line in lines if "/oauth/device_authorization" in line)
        started = subprocess.run(shlex.split(step_one.split(". ", 1)[1]), capture_output=True,
                                 text=True, timeout=30, check=True)
        assert '"user_code"' in started.stdout
    finally:
        _stop(process)

    # A second start on the same data dir finds everything and still plays.
    process, lines = _start(tmp_path / "data", port)
    try:
        again = subprocess.run(shlex.split(_printed(lines, "decode")), capture_output=True,
                               text=True, timeout=120, check=False)
        assert again.returncode == 0 and again.stderr == "", again.stderr
    finally:
        _stop(process)

