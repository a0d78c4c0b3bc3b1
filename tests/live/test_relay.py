"""A listener's relay: what its ffmpeg is told, how its log is judged and scrubbed, and,
with a real ffmpeg publishing to it, that a wrong stream key is refused before a byte
of its stream reaches the loopback port, while the right one is carried."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stb_origin.live import relay
from stb_origin.live.relay import Relay, Relays, Verdict
from stb_origin.live.sources import input_args
from tests.conftest import require_tools
from tests.support import live


@pytest.fixture
def ffmpeg() -> str:
    require_tools("ffmpeg")
    found = shutil.which("ffmpeg")
    assert found is not None
    return found


@pytest.mark.parametrize(("line", "verdict"), [
    ("[rtmp @ 0x55d1] Unexpected stream WRONG, expecting KEY", Verdict.REFUSED),
    ("[rtmp @ 0x55d1] App field don't match up: other <-> live", Verdict.REFUSED),
    ("Input #0, flv, from 'rtmp://0.0.0.0:1935/live/KEY':", Verdict.CARRYING),
    ("Input #0, mpegts, from 'srt://0.0.0.0:9000?mode=listener':", Verdict.CARRYING),
    ("  Stream #0:0: Video: h264", None),
    ("    Last message repeated 1 times", None),
])
def test_each_line_of_the_relay_s_log_is_judged(line: str, verdict: Verdict | None) -> None:
    assert relay.judge(line) == verdict


def test_the_relay_listens_and_copies_to_its_stdout(ffmpeg: str) -> None:
    url = "rtmp://0.0.0.0:1935/live/key?mode=listener"
    argv = relay.relay_argv(ffmpeg, url)
    assert argv[0] == ffmpeg
    # At info level: its "Input #0" line is what lets its stream through.
    assert argv[argv.index("-loglevel") + 1] == "info"
    at = argv.index("-protocol_whitelist")
    assert argv[at:at + len(input_args(url))] == input_args(url)
    assert argv[-5:] == ["-c", "copy", "-f", "mpegts", "pipe:1"]
    assert "mode=listener" not in " ".join(argv)


def test_what_ffmpeg_says_is_scrubbed_of_every_secret() -> None:
    secrets_ = ["correct-horse", "k3y"]
    line = "Input #0, flv, from 'rtmp://0.0.0.0:1935/live/k3y?passphrase=correct-horse':"
    assert relay.scrub(line, secrets_) == (
        "Input #0, flv, from 'rtmp://0.0.0.0:1935/live/***?passphrase=***':")


@pytest.fixture
def loopback() -> Iterator[socket.socket]:
    """What a channel's ffmpeg would be: a socket on a relay's loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((relay.LOOPBACK, 0))
        sock.setblocking(False)
        yield sock


def _received(sock: socket.socket) -> int:
    got = 0
    while True:
        try:
            got += len(sock.recv(65536))
        except BlockingIOError:
            return got


def _ended(found: Relay) -> Verdict | None:
    session = found._session
    return session.verdict if session is not None and session.popen.poll() is not None else None


def test_a_wrong_key_is_refused_before_a_byte_is_carried(ffmpeg: str, tmp_path: Path,
                                                         loopback: socket.socket) -> None:
    port, key = live.free_tcp_port(), secrets.token_hex(8)
    found = Relay(f"rtmp://127.0.0.1:{port}/live/{key}?mode=listener", "channel")
    found.port = loopback.getsockname()[1]
    try:
        found.tend(ffmpeg)
        with live.pushing(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/wrong"],
                          tmp_path / "wrong.log"):
            verdict = live.wait_for("the relay ended", lambda: _ended(found), timeout=30)
        assert verdict is Verdict.REFUSED
        # Loopback delivers as it sends: anything carried would be waiting here.
        assert _received(loopback) == 0

        # After its pause, the relay listens again.
        live.wait_for("the relay listening again",
                      lambda: found.tend(ffmpeg) or found.runs == 2, timeout=10)
        with live.pushing(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}"],
                          tmp_path / "right.log"):
            live.wait_for("the stream carried", lambda: _received(loopback) > 0, timeout=30)
            assert found._session is not None and found._session.verdict is Verdict.CARRYING
            assert not found.left(2)
    finally:
        found.stop()


def test_the_relays_follow_the_channel_s_sources(ffmpeg: str) -> None:
    port = live.free_tcp_port()
    listener = f"rtmp://127.0.0.1:{port}/live/key?mode=listener"
    pull = "udp://127.0.0.1:5000"
    relays = Relays(ffmpeg, "channel")
    try:
        relays.update([pull, listener])
        read = relays.input_args(input_args)
        # The listener is read from its relay's port, bound to loopback; others as they are.
        assert read(pull) == input_args(pull)
        looped = read(listener)
        assert looped[-1].startswith("udp://127.0.0.1:") and "localaddr=127.0.0.1" in looped[-1]
        assert relays.run_of(listener) == 1 and relays.run_of(pull) is None
        assert not relays.left(listener, 1)
        live.wait_for("the relay listening", lambda: live.listening(port), timeout=10)
        relays.update([pull])  # the listener removed: its relay stops
        assert not live.listening(port)
        assert read(listener) == input_args(listener)
    finally:
        relays.stop()

