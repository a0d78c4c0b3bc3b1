"""Sources an encoder comes to: ffmpeg publishing RTMP to a runner's listener and
calling an SRT listener, each through the runner's relay (live.relay). A wrong
stream key never goes on air, no secret reaches the logs, a publisher that leaves
and comes back is switched from and back to, and a SIGKILLed runner's relay dies
with it so that the next runner can listen on the port."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import m3u8
import pytest

from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.player import decoded_frames
from tests.live.test_runner import decrypted, holder, listed, playlist, start_runner, text_of
from tests.support import live
from tests.support.processes import command_line, descendants, survivors
from tests.support.workers import logs

pytestmark = pytest.mark.usefixtures("tools")


@pytest.fixture
def tools() -> None:
    require_tools("ffmpeg", "ffprobe")


def _rtmp(port: int, key: str) -> tuple[str, list[str]]:
    """A channel's RTMP listener and what its encoder publishes to."""
    return (f"rtmp://127.0.0.1:{port}/live/{key}?mode=listener",
            ["-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}"])


def _on(services: Services, channel_id: str, source: int | None, status: str) -> bool:
    row = live.channel(services, channel_id)
    return row.active_source == source and row.status == status


def _goes_live(services: Services, settings: Settings, api: str, channel_id: str,
               tmp_path: Path) -> m3u8.M3U8:
    """The channel on its listener, two segments on, the last one decrypting (through
    the origin) to whole frames of the encoder's frame rate (the slate has another)."""
    live.wait_for("the listener on air", lambda: _on(services, channel_id, 0, "live"),
                  timeout=60, explain=lambda: logs(settings))
    count = len(live.segments(services, channel_id))
    live.wait_for("segments from the listener",
                  lambda: len(live.segments(services, channel_id)) >= count + 2, timeout=20)
    found = live.wait_for("the playlist", lambda: listed(api, channel_id, "72p", 2), timeout=10)
    segment = found.segments[-1]
    assert segment.key.method == "AES-128"
    clear = decrypted(services, channel_id, segment, tmp_path / "clear.ts")
    assert decoded_frames(clear) == round(segment.duration * live.FPS)
    return found


def _runner_log(settings: Settings, name: str) -> str:
    return (settings.data_dir / "logs" / f"{name}.log").read_text(errors="replace")


def _pushed_live(services: Services, settings: Settings, api: str,
                 runners: list[subprocess.Popen[bytes]], tmp_path: Path, source: str,
                 publish: list[str]) -> None:
    """A channel of ``source`` on a runner, on air while an encoder pushes to it."""
    channel_id = live.add_channel(services, [source], ladder=[72])
    start_runner(runners, settings, "runner-a")
    with live.pushing(publish, tmp_path / "encoder.log"):
        _goes_live(services, settings, api, channel_id, tmp_path)


def test_an_rtmp_push_goes_live(services: Services, settings: Settings, api: str,
                                runners: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    key = secrets.token_hex(12)
    source, publish = _rtmp(live.free_tcp_port(), key)
    _pushed_live(services, settings, api, runners, tmp_path, source, publish)
    assert key not in logs(settings)


def test_a_push_with_a_wrong_stream_key_never_goes_on_air(
        services: Services, settings: Settings, api: str,
        runners: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    key, wrong = secrets.token_hex(12), secrets.token_hex(12)
    port = live.free_tcp_port()
    source, publish = _rtmp(port, key)
    channel_id = live.add_channel(services, [source], ladder=[72])
    start_runner(runners, settings, "runner-a")
    with live.pushing(_rtmp(port, wrong)[1], tmp_path / "wrong.log") as pusher:
        live.wait_for("two publishes refused",
                      lambda: _runner_log(settings, "runner-a").count(
                          "a publisher was refused") >= 2,
                      timeout=60, explain=lambda: logs(settings))
        count = len(live.segments(services, channel_id))
        live.wait_for("slate segments meanwhile",
                      lambda: len(live.segments(services, channel_id)) >= count + 2, timeout=30)
        assert pusher.attempts >= 2

    # Nothing but the slate was listed: the wrong publisher's stream never reached it.
    assert _on(services, channel_id, None, "no_signal")
    listed_by = services.redis.hgetall("stb:metrics:stb_live_segments_total")
    assert not any(b"source" in label for label in listed_by), listed_by
    assert listed_by
    # The right key, after the wrong ones: on air.
    with live.pushing(publish, tmp_path / "encoder.log"):
        _goes_live(services, settings, api, channel_id, tmp_path)
    assert key not in logs(settings)
    assert wrong not in logs(settings)


def test_an_srt_listener_with_a_passphrase_goes_live(
        services: Services, settings: Settings, api: str,
        runners: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    port = live.free_udp_port()
    secret = f"correct-horse-{secrets.token_hex(6)}"
    caller = ["-f", "mpegts", f"srt://127.0.0.1:{port}?mode=caller&passphrase={secret}"]
    _pushed_live(services, settings, api, runners, tmp_path,
                 f"srt://127.0.0.1:{port}?mode=listener&passphrase={secret}", caller)
    assert secret not in logs(settings)


def test_a_publisher_that_leaves_is_switched_from_and_back_to_when_it_returns(
        services: Services, settings: Settings, api: str,
        runners: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    source, publish = _rtmp(live.free_tcp_port(), secrets.token_hex(12))
    channel_id = live.add_channel(services, [source], ladder=[72], failover_after_s=2.0)
    start_runner(runners, settings, "runner-a")
    with live.pushing(publish, tmp_path / "encoder.log"):
        _goes_live(services, settings, api, channel_id, tmp_path)
    first = live.segments(services, channel_id)[-1]
    # Gone: the slate, at once (its relay ended), and the channel goes on.
    live.wait_for("the slate on air", lambda: _on(services, channel_id, None, "no_signal"),
                  timeout=30, explain=lambda: logs(settings))
    count = len(live.segments(services, channel_id))
    live.wait_for("slate segments", lambda: len(live.segments(services, channel_id)) >= count + 2,
                  timeout=20)
    # Back: switched back to once its probes see it, after a discontinuity.
    with live.pushing(publish, tmp_path / "encoder.log"):
        found = _goes_live(services, settings, api, channel_id, tmp_path)
        text = text_of(api, channel_id, "72p")

    rows = live.segments(services, channel_id)
    assert rows[-1].discontinuity >= first.discontinuity + 2  # listener, slate, listener
    assert [r.seq for r in rows] == list(range(rows[0].seq, rows[0].seq + len(rows)))
    assert "#EXT-X-DISCONTINUITY\n" in text and found.segments
    assert "the encoder left its listener" in _runner_log(settings, "runner-a")
    switches = services.redis.hgetall("stb:metrics:stb_live_switches_total")
    assert any(b"back" in label for label in switches), switches


def test_a_killed_runner_s_relay_dies_with_it_and_the_next_runner_listens(
        services: Services, settings: Settings, api: str,
        runners: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    port = live.free_tcp_port()
    key = secrets.token_hex(12)
    source, publish = _rtmp(port, key)
    channel_id = live.add_channel(services, [source], ladder=[72])
    a = start_runner(runners, settings, "runner-a")
    with live.pushing(publish, tmp_path / "encoder.log"):
        _goes_live(services, settings, api, channel_id, tmp_path)
        relays = [p for p in descendants(a.pid) if "-listen" in command_line(p).split()]
        assert len(relays) == 1, [command_line(p) for p in descendants(a.pid)]
        before = live.segments(services, channel_id)[-1]
        os.kill(a.pid, signal.SIGKILL)  # the runner alone: its children are on their own
        a.wait()

        assert survivors(relays, patience_s=10) == []
        assert not live.listening(port)
        b = start_runner(runners, settings, "runner-b")
        live.wait_for("the next runner's segments", lambda: [
            s for s in live.segments(services, channel_id) if s.epoch > before.epoch],
            timeout=60, explain=lambda: logs(settings))
        _goes_live(services, settings, api, channel_id, tmp_path)
        assert str(b.pid) in (holder(services, channel_id) or "")
        after = playlist(api, channel_id, "72p")

    assert after is not None and after.segments[-1].uri is not None
    assert live.segments(services, channel_id)[-1].epoch > before.epoch
    assert key not in logs(settings)
