"""The README's first command: `stb-origin dev` on a fresh data dir starts everything
and prints commands that work as printed, among them one that plays the encrypted
sample through the real entitlement checks."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stb_origin.accounts.devices import Capabilities
from stb_origin.origin.masters import Filter, canonical_name
from tests.conftest import require_tools
from tests.e2e.player import play
from tests.e2e.stack import free_port
from tests.support.processes import descendants, survivors

START_TIMEOUT_S = 180
REPO = Path(__file__).resolve().parents[2]
_readers: dict[int, threading.Thread] = {}  # pid -> the thread collecting its output


def _checkout(tmp_path: Path) -> Path:
    """A directory laid out like a clone after `scripts/setup`: `.venv` is the
    virtualenv these tests run in, `data/` appears on first start."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(Path(sys.prefix))
    return checkout


def _clean_env() -> dict[str, str]:
    """A new terminal's environment: no STB_ settings, the virtualenv not activated."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STB_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d != venv_bin)
    return env


def _start(checkout: Path, port: int,
           *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    # As scripts/dev does: from the checkout, with the embedded defaults (./data).
    process = subprocess.Popen([".venv/bin/stb-origin", "dev", "--port", str(port), *args],
                               cwd=checkout, env=_clean_env(), text=True,
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


def _shell(command: str, cwd: Path, **env: str) -> str:
    """command as a user pastes it into a new terminal in the checkout; its stdout."""
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env={**_clean_env(), **env},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    return done.stdout


def _stop(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> None:
    process.send_signal(signum)  # SIGINT: Ctrl-C, as the README says
    try:
        assert process.wait(timeout=60) == (-signal.SIGKILL if signum == signal.SIGKILL else 0)
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


def _what_a_box_reads_works_as_printed(lines: list[str]) -> None:
    """The catalog, GraphQL and sync commands, run as printed, show the sample title."""
    def run(label: str) -> dict[str, Any]:
        done = subprocess.run(shlex.split(_printed(lines, label)), capture_output=True,
                              text=True, timeout=30, check=True)
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    assert [t["name"] for t in run("browse")["items"]] == ["Sample clip"]
    graph = run("graphql")["data"]
    assert [t["name"] for t in graph["titles"]["items"]] == ["Sample clip"]
    assert [c["name"] for c in graph["channels"]["items"]] == ["Demo channel"]
    synced = run("sync")
    assert synced["reset"] and {u["kind"] for u in synced["upserts"]} == {
        "entitlements", "channel", "title"}


def _the_console_signs_in_as_printed(lines: list[str]) -> None:
    """The console line: its URL and its dev admin's email and password work."""
    printed = re.fullmatch(r"(\S+)\s+sign in as (\S+) with password (\S+)\s+\(an admin\)",
                           _printed(lines, "console"))
    assert printed, _printed(lines, "console")
    url, email, password = printed.groups()
    origin = url.rsplit("/console", 1)[0]
    with httpx.Client(timeout=10, headers={"Origin": origin}) as browser:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(url).text)
        assert csrf
        signed_in = browser.post(origin + "/console/sign-in", data={
            "csrf_token": csrf.group(1), "email": email, "password": password})
        assert signed_in.status_code == 303, signed_in.text
        assert email in browser.get(url).text


def test_dev_plays_the_encrypted_sample_as_printed(tmp_path: Path) -> None:
    require_tools("ffmpeg", "ffprobe", "redis-server", "curl")
    port = free_port()  # not the default 8000: the issuer follows the port
    checkout = _checkout(tmp_path)
    process, lines = _start(checkout, port)
    try:
        url = _printed(lines, "sample")
        # The printed decode command, run as printed: every frame decrypts.
        decode = subprocess.run(shlex.split(_printed(lines, "decode")), capture_output=True,
                                text=True, timeout=120, check=False)
        assert decode.returncode == 0 and decode.stderr == "", decode.stderr
        # The demo channel is live and its printed command plays 10 s of it, decrypted.
        live = subprocess.run(shlex.split(_printed(lines, "decode live")), capture_output=True,
                              text=True, timeout=60, check=False)
        assert live.returncode == 0 and live.stderr == "", live.stderr
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
        _what_a_box_reads_works_as_printed(lines)
        _the_console_signs_in_as_printed(lines)
        _the_cli_in_the_checkout_talks_to_this_server(lines, checkout, port)
        _the_readme_examples_work_against_this_server(url, checkout, port)
    finally:
        _stop(process)

    # A second start on the same data dir finds everything and still plays.
    process, lines = _start(checkout, port)
    try:
        again = subprocess.run(shlex.split(_printed(lines, "decode")), capture_output=True,
                               text=True, timeout=120, check=False)
        assert again.returncode == 0 and again.stderr == "", again.stderr
    finally:
        _stop(process)



def _the_cli_in_the_checkout_talks_to_this_server(lines: list[str], checkout: Path,
                                                  port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    # The CLI line as printed, pasted into a new terminal in the checkout.
    token = _shell(_printed(lines, "CLI"), checkout).strip()
    assets = httpx.get(base + "/v1/assets", headers={"Authorization": f"Bearer {token}"})
    assert assets.status_code == 200, assets.text
    # A token for another issuer is refused, and the answer says which was expected.
    other = _shell(_printed(lines, "CLI"), checkout,
                   STB_PUBLIC_BASE_URL="http://127.0.0.1:1").strip()
    refused = httpx.get(base + "/v1/assets", headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith(
        f"wrong issuer: this server expects '{base}', the token has 'http://127.0.0.1:1'")
    # The printed upload command, run as printed, uploads a file that exists.
    upload = subprocess.run(shlex.split(_printed(lines, "upload")), capture_output=True,
                            text=True, timeout=60, check=True)
    assert json.loads(upload.stdout)["status"] == "queued", upload.stdout


def _readme_block(after: str) -> list[str]:
    """The lines of the first ```sh block that follows the README line `after`."""
    text = (REPO / "README.md").read_text()
    start = text.index("```sh\n", text.index(after)) + len("```sh\n")
    return text[start:text.index("```", start)].splitlines()


def _the_readme_examples_work_against_this_server(sample_url: str, checkout: Path,
                                                  port: int) -> None:
    # The upload example, as printed but for the port, up to where it needs an id.
    block = _readme_block("Upload a master and play it")
    runnable = "\n".join(line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                         for line in block[:next(i for i, line in enumerate(block)
                                                 if "<id>" in line)])
    answer = _shell("set -e\n" + runnable, checkout)
    assert json.loads(answer)["status"] == "queued", answer
    # The README's box capabilities keep some variant of the sample: it plays (no 409).
    example = re.search(r"device_capabilities=(\{.*?\})'", "\n".join(
        _readme_block("prints these steps")))
    assert example is not None
    caps = Capabilities.from_json(json.loads(example.group(1)))
    master = httpx.get(sample_url).content
    wanted = Filter.for_device(caps.max_width, caps.max_height, caps.codecs)
    assert canonical_name(master, wanted) is not None, master.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                    signal.SIGKILL], ids=lambda s: signal.Signals(s).name)
def test_however_dev_ends_no_process_of_its_tree_survives(tmp_path: Path, signum: int) -> None:
    require_tools("redis-server")
    process, lines = _start(_checkout(tmp_path), free_port(), "--no-sample")
    tree = descendants(process.pid)
    # its Redis, the server, the worker (and the worker's scheduler)
    assert len(tree) >= 3, "\n".join(lines)
    _stop(process, signum)
    assert survivors(tree) == [], "\n".join(lines)
