"""A runner goes live from each kind of source but UDP (tests/live/test_runner.py): SRT,
an RTMP pull from a server and an HLS pull over HTTP, each to a decryptable live
playlist; and a hostile remote playlist cannot make ffmpeg open a file."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.staticfiles import StaticFiles

from stb_origin.live.sources import input_args
from stb_origin.services import Services
from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.player import decoded_frames
from tests.live.test_runner import decrypted, listed, start_runner
from tests.support import live
from tests.support.http import run_server
from tests.support.workers import logs

pytestmark = pytest.mark.usefixtures("tools")


@pytest.fixture
def tools() -> None:
    require_tools("ffmpeg", "ffprobe")


def _goes_live(services: Services, settings: Settings, api: str,
               runners: list[subprocess.Popen[bytes]], source: str, tmp_path: Path) -> None:
    """The channel of ``source`` on air through the origin, every rung decrypting to
    whole frames."""
    channel_id = live.add_channel(services, [source], ladder=[72])
    start_runner(runners, settings, "runner-a")
    found = live.wait_for("three segments listed", lambda: listed(api, channel_id, "72p", 3),
                          timeout=40, explain=lambda: logs(settings))
    row = live.channel(services, channel_id)
    assert (row.status, row.active_source, row.error_message) == ("live", 0, None)
    segment = found.segments[-1]
    assert segment.key.method == "AES-128"
    clear = decrypted(services, channel_id, segment, tmp_path / "clear.ts")
    assert decoded_frames(clear) == round(segment.duration * live.FPS)


def test_an_srt_source_goes_live(services: Services, settings: Settings, api: str,
                                 runners: list[subprocess.Popen[bytes]],
                                 tmp_path: Path) -> None:
    port = live.free_udp_port()
    # The encoder listens, the runner calls (with a passphrase: encrypted SRT).
    secret = "correct-horse-battery"
    output = ["-f", "mpegts", f"srt://127.0.0.1:{port}?mode=listener&passphrase={secret}"]
    with live.encoder_to(output, log=tmp_path / "encoder.log"):
        time.sleep(1)
        _goes_live(services, settings, api, runners,
                   f"srt://127.0.0.1:{port}?mode=caller&passphrase={secret}", tmp_path)
    assert secret not in logs(settings)


def test_an_rtmp_pull_source_goes_live(services: Services, settings: Settings, api: str,
                                       runners: list[subprocess.Popen[bytes]],
                                       tmp_path: Path) -> None:
    port = live.free_tcp_port()
    # ffmpeg as the RTMP server: it waits for one player, then sends it the stream.
    output = ["-f", "flv", "-listen", "1", f"rtmp://127.0.0.1:{port}/live/channel1"]
    with live.encoder_to(output, log=tmp_path / "encoder.log"):
        time.sleep(1)
        _goes_live(services, settings, api, runners, f"rtmp://127.0.0.1:{port}/live/channel1",
                   tmp_path)


@pytest.fixture
def hls_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP, as a CDN would serve an encoder's live HLS."""
    folder = tmp_path / "hls"
    folder.mkdir()
    with run_server(StaticFiles(directory=folder), lifespan="off") as base_url:
        yield folder, base_url


def test_an_hls_pull_source_goes_live(services: Services, settings: Settings, api: str,
                                      runners: list[subprocess.Popen[bytes]], tmp_path: Path,
                                      hls_server: tuple[Path, str]) -> None:
    folder, base_url = hls_server
    output = ["-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
              "-hls_flags", "delete_segments", str(folder / "live.m3u8")]
    with live.encoder_to(output, log=tmp_path / "encoder.log"):
        live.wait_for("the encoder's playlist", lambda: (folder / "live.m3u8").exists() and
                      (folder / "live.m3u8").read_text().count("#EXTINF") >= 2, timeout=20)
        _goes_live(services, settings, api, runners, f"{base_url}/live.m3u8?token=abc",
                   tmp_path)
    assert "token=abc" not in logs(settings)


def test_a_remote_playlist_cannot_make_ffmpeg_open_a_file(
        tmp_path: Path, hls_server: tuple[Path, str]) -> None:
    folder, base_url = hls_server
    # A real, readable segment on this machine, named by a hostile playlist.
    secret = tmp_path / "secret.ts"
    with live.encoder_to(["-t", "1", "-f", "mpegts", str(secret)]) as making:
        making.wait(timeout=30)
    assert secret.stat().st_size > 0
    (folder / "evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1.0,\nfile://{secret}\n#EXTINF:1.0,\n{secret}\n#EXT-X-ENDLIST\n")
    ffprobe = shutil.which("ffprobe")
    assert ffprobe is not None
    refused = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
         *input_args(f"{base_url}/evil.m3u8")],
        capture_output=True, text=True, timeout=30, check=False)
    assert "video" not in refused.stdout
    assert "not on whitelist" in refused.stderr, refused.stderr
