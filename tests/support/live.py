"""Live channels in tests: a real encoder pushing MPEG-TS over UDP (or to a
listener, pushing again whenever its connection ends), real runner processes, and
the channel's rows."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from stb_origin.assets.channels import Channel
from stb_origin.db.types import new_id
from stb_origin.live.index import LiveSegment
from stb_origin.services import Services

T = TypeVar("T")
FPS = 25
TCP_LISTEN = "0A"  # the LISTEN state in /proc/net/tcp


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether a socket of this machine listens on TCP ``port`` (read from /proc: a
    connection to find out would be taken for a publisher)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state == TCP_LISTEN:
                return True
    return False


def udp_source(port: int) -> str:
    # timeout (µs): ffmpeg gives up on a silent source instead of waiting for ever.
    return f"udp://127.0.0.1:{port}?timeout=3000000&overrun_nonfatal=1"


@contextlib.contextmanager
def encoder(port: int, size: str = "192x108", tone: int = 440,
            keyframe_s: float = 1.0) -> Iterator[subprocess.Popen[bytes]]:
    """ffmpeg as a live encoder: testsrc2 and a tone, in real time, as MPEG-TS over UDP,
    a key frame every ``keyframe_s``."""
    with encoder_to(["-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"], size,
                    tone, keyframe_s=keyframe_s) as process:
        yield process


def _encoder_argv(output: Sequence[str], size: str, tone: int,
                  keyframe_s: float = 1.0) -> list[str]:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "install ffmpeg"
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
            "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
            "-g", str(round(FPS * keyframe_s)),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", *output]


@contextlib.contextmanager
def encoder_to(output: Sequence[str], size: str = "192x108", tone: int = 440,
               log: Path | None = None, keyframe_s: float = 1.0
               ) -> Iterator[subprocess.Popen[bytes]]:
    """The live encoder with any output: ``output`` is ffmpeg's output options and URL
    (an SRT caller or listener, an RTMP server with -listen 1, a live HLS playlist)."""
    with contextlib.ExitStack() as stack:
        errors: IO[bytes] | int = (stack.enter_context(open(log, "wb")) if log is not None
                                   else subprocess.DEVNULL)
        process = subprocess.Popen(_encoder_argv(output, size, tone, keyframe_s),
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errors)
        try:
            yield process
        finally:
            process.kill()
            process.wait()


class Pusher:
    """The live encoder pushing to a listener (an RTMP publish, an SRT caller) that, as
    OBS does, pushes again a moment after each connection ends: the listener is not
    there yet, has gone, or refused it. ``attempts`` counts its connections tried."""

    def __init__(self, output: Sequence[str], log: Path) -> None:
        self._argv = _encoder_argv(output, "192x108", 440)
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._push, daemon=True)
        self._process: subprocess.Popen[bytes] | None = None
        self.attempts = 0

    def _push(self) -> None:
        while not self._stop.is_set():
            with open(self._log, "ab") as errors:
                self._process = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=errors)
            self.attempts += 1
            while self._process.poll() is None and not self._stop.is_set():
                self._stop.wait(0.1)
            self._stop.wait(0.5)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._process is not None:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def pushing(output: Sequence[str], log: Path) -> Iterator[Pusher]:
    pusher = Pusher(output, log)
    pusher.start()
    try:
        yield pusher
    finally:
        pusher.stop()


def add_channel(services: Services, sources: Sequence[str], ladder: Any = (108, 72),
                segment_s: float = 1.0, **fields: Any) -> str:
    channel_id = new_id()
    with services.db.session() as session:
        session.add(Channel(id=channel_id, name=f"test {channel_id[:6]}", sources=list(sources),
                            ladder=list(ladder) if not isinstance(ladder, str) else ladder,
                            segment_s=segment_s, **fields))
    return channel_id


def channel(services: Services, channel_id: str) -> Channel:
    with services.db.session() as session:
        found = session.get(Channel, channel_id)
        assert found is not None
        return found


def segments(services: Services, channel_id: str) -> list[LiveSegment]:
    with services.db.session() as session:
        return list(session.query(LiveSegment).filter_by(channel_id=channel_id)
                    .order_by(LiveSegment.seq))


def wait_for(what: str, check: Callable[[], T | None], timeout: float,
             every: float = 0.2, explain: Callable[[], str] = lambda: "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s\n{explain()}")
        time.sleep(every)
