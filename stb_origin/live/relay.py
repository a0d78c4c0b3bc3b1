"""A listener source's relay: the one process that waits for the channel's encoder.

A listener (an RTMP push, an SRT listener: ``live.sources``) binds its port, and
only one process can: an ffprobe of the listener, as a run probes the sources
better than what is on air, would take the encoder's connection from the
channel's ffmpeg. So each listener source of a run gets a relay: one ffmpeg
that listens, takes one encoder and copies its streams (no decoding) as MPEG-TS
to a loopback UDP port. The channel's ffmpeg and its probes read that port
instead (``Relays.input_args``): failover, the slate and switching back work as
for any UDP source. The relay's ffmpeg ends when its encoder leaves, is refused
or stalls; the relay listens again after a short pause.

ffmpeg's RTMP server does not refuse a publish to another application or
stream: rtmpproto.c only warns ("App field don't match up", "Unexpected stream
X, expecting KEY") and goes on, so the key alone would keep no one out. Hence
the relay's ffmpeg writes to a pipe that is read only once its log has said the
input is open ("Input #0", which follows the publish) without either warning; a
relay that warns is killed before a byte of its stream is read. (SRT needs no
such care: libsrt refuses a wrong passphrase in its handshake.)

ffmpeg's log quotes the listener's URL and the expected key: what the relay
logs is scrubbed of every secret of its source (``sources.secret_parts``). The
relay's ffmpeg is spawned from the run's thread and dies with it
(``proc.spawn``'s die_with_parent), so a SIGKILLed runner leaves nothing
holding the port for the runner that takes the channel over.
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence

from stb_origin import proc
from stb_origin.live import encoder
from stb_origin.live.sources import InputArgs, input_args, parse_source, redacted, secret_parts

log = logging.getLogger("stb_origin.live")

PAUSE_S = 1.0
# A relay that ended with no encoder (its port taken, say) waits longer each time.
MAX_PAUSE_S = 30.0
STOP_GRACE_S = 5.0
LOOPBACK = "127.0.0.1"
DATAGRAM = 7 * 188  # MPEG-TS packets per datagram, as encoders send them over UDP
READ_BYTES = 64 * 1024
TAIL_LINES = 5
OPEN = "Input #0"
REFUSALS = ("Unexpected stream", "App field don't match up")
SCRUBBED = "***"


class Verdict(enum.StrEnum):
    WAITING = "waiting"  # for an encoder, or for its input to open
    CARRYING = "carrying"  # its stream goes to the loopback port
    REFUSED = "refused"  # it named another application or stream key


def judge(line: str) -> Verdict | None:
    """What a line of the relay's log decides, if anything."""
    if any(refusal in line for refusal in REFUSALS):
        return Verdict.REFUSED
    if line.startswith(OPEN):
        return Verdict.CARRYING
    return None


def relay_argv(ffmpeg: str, url: str) -> list[str]:
    """Listen on the source, copy its streams as MPEG-TS to stdout; at info level, for
    the line that says the input is open."""
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            *encoder.live_input(), *input_args(url), "-c", "copy", "-f", "mpegts", "pipe:1"]


def loopback_url(port: int) -> str:
    # Bound to loopback: nothing on the network can write into a relay's port.
    return f"udp://{LOOPBACK}:{port}?localaddr={LOOPBACK}"


def scrub(line: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        line = line.replace(secret, SCRUBBED)
    return line


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class _Session:
    """One relay ffmpeg: it waits for an encoder and carries its stream until it leaves.
    A thread reads its log and judges; another carries its stdout once it may."""

    def __init__(self, popen: subprocess.Popen[bytes], url: str, port: int) -> None:
        self.popen = popen
        self.verdict = Verdict.WAITING
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._url = url
        self._port = port
        self._secrets = secret_parts(url)
        self._decided = threading.Event()
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._carry, daemon=True)]

    @classmethod
    def start(cls, ffmpeg: str, url: str, port: int) -> _Session:
        popen = proc.spawn(relay_argv(ffmpeg, url), pipes=True, die_with_parent=True)
        session = cls(popen, url, port)
        for thread in session._threads:
            thread.start()
        return session

    def _watch(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            line = raw.decode(errors="replace").rstrip()
            verdict = judge(line)
            if verdict is Verdict.REFUSED:
                # Killed first: the carrier reads nothing once it sees this verdict.
                self.popen.kill()
                self.verdict = Verdict.REFUSED
                self._decided.set()
                continue  # the line names keys: it is not kept
            if verdict is Verdict.CARRYING and self.verdict is Verdict.WAITING:
                self.verdict = Verdict.CARRYING
                self._decided.set()
            self.tail.append(scrub(line, self._secrets))
        self._decided.set()  # ended undecided: nothing to carry

    def _carry(self) -> None:
        self._decided.wait()
        out = self.popen.stdout
        assert out is not None
        if self.verdict is not Verdict.CARRYING:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            pending = b""
            try:
                while chunk := os.read(out.fileno(), READ_BYTES):
                    pending += chunk
                    whole = len(pending) - len(pending) % DATAGRAM
                    for at in range(0, whole, DATAGRAM):
                        sock.sendto(pending[at:at + DATAGRAM], (LOOPBACK, self._port))
                    pending = pending[whole:]
            except OSError as exc:
                # Nothing left to carry it: end the relay (it listens again).
                log.warning("a relay could not carry its stream",
                            extra={"url": redacted(self._url), "reason": exc.strerror})
                self.popen.kill()

    def end(self) -> None:
        """Once its ffmpeg has ended: its threads are done and its pipes closed."""
        self.popen.wait()
        for thread in self._threads:
            thread.join(STOP_GRACE_S)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self) -> None:
        proc.stop(self.popen, STOP_GRACE_S)
        self.end()


class Relay:
    """One listener source's relay, listening again whenever its ffmpeg ends, until
    stopped. ``runs`` counts its ffmpegs: a new one carries a new encoder."""

    def __init__(self, url: str, channel_id: str) -> None:
        self.url = url
        self.port = _free_udp_port()
        self.runs = 0
        self._channel_id = channel_id
        self._session: _Session | None = None
        self._start_at = 0.0
        self._pause = PAUSE_S

    def tend(self, ffmpeg: str) -> None:
        """Note a relay ffmpeg that ended; start the next once its pause is over."""
        if self._session is not None and self._session.popen.poll() is not None:
            self._ended(self._session)
            self._session = None
        if self._session is None and time.monotonic() >= self._start_at:
            self._session = _Session.start(ffmpeg, self.url, self.port)
            self.runs += 1

    def left(self, run: int) -> bool:
        """Whether the encoder of ffmpeg number ``run`` is gone (or never came)."""
        return (run != self.runs or self._session is None
                or self._session.popen.poll() is not None)

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()
            self._session = None

    def _ended(self, session: _Session) -> None:
        session.end()
        facts = {"channel_id": self._channel_id, "url": redacted(self.url),
                 "returncode": session.popen.returncode}
        if session.verdict is Verdict.REFUSED:
            log.warning("a publisher was refused: wrong application or stream key",
                        extra=facts)
        elif session.verdict is Verdict.CARRYING:
            log.info("the encoder left its listener", extra={**facts, "log": list(session.tail)})
        else:
            log.warning("a listener ended before a stream came in",
                        extra={**facts, "log": list(session.tail)})
        had_encoder = session.verdict is not Verdict.WAITING
        self._pause = PAUSE_S if had_encoder else min(self._pause * 2, MAX_PAUSE_S)
        self._start_at = time.monotonic() + self._pause


class Relays:
    """The relays of one channel run, one per listener source."""

    def __init__(self, ffmpeg: str, channel_id: str) -> None:
        self._ffmpeg = ffmpeg
        self._channel_id = channel_id
        self._by_url: dict[str, Relay] = {}

    def update(self, sources: Sequence[str]) -> None:
        """A relay for each listener in ``sources``: the others stop, new ones start."""
        listeners = {url for url in sources if parse_source(url).listens}
        for url in set(self._by_url) - listeners:
            self._by_url.pop(url).stop()
        for url in sorted(listeners - set(self._by_url)):
            self._by_url[url] = Relay(url, self._channel_id)
        self.tend()

    def tend(self) -> None:
        for relay in self._by_url.values():
            relay.tend(self._ffmpeg)

    def input_args(self, inner: InputArgs) -> InputArgs:
        """``inner``, reading each listener through its relay's loopback port."""
        def read(url: str) -> list[str]:
            relay = self._by_url.get(url)
            return inner(loopback_url(relay.port) if relay is not None else url)

        return read

    def run_of(self, url: str) -> int | None:
        """The relay ffmpeg now carrying (or awaiting) a listener's encoder; None for a
        source that is not a listener."""
        relay = self._by_url.get(url)
        return relay.runs if relay is not None else None

    def left(self, url: str, run: int) -> bool:
        return self._by_url[url].left(run)

    def stop(self) -> None:
        for relay in self._by_url.values():
            relay.stop()
        self._by_url.clear()
