"""One channel on air, in one thread of a runner: which source, its ffmpeg, its segments.

What is on air is one ffmpeg (``live.encoder``) reading the best source that
works: the primary, else the first backup that does, else the slate. A source
fails when its ffmpeg ends or lists no new segment for ``failover_after_s``
(plus ``START_ALLOWANCE_S`` for its first: the encoder has to start). While a
backup or the slate is on air, the better sources are probed in turn in the
background (ffprobe); one that answers ``STABLE_PROBES`` times in a row is
switched back to. Every change of what is on air starts a new ffmpeg, and its
first listed segment starts a discontinuity in the playlists.

A listener source (an encoder pushing to us) is read, and probed, through its
relay (``live.relay``): its ffmpeg and probes read the relay's loopback port.
The relay's encoder leaving fails that source at once, without waiting for the
silence; one that comes back is switched back to like any source.

Segment N is published (``live.publisher``) once every rendition has listed it,
in order, with the next media sequence number of the channel's index. Its
program date-time is the wall clock at which its ffmpeg's first segment was
listed, less that segment's end on ffmpeg's clock, plus the segment's start on
it: the segments of one ffmpeg are spaced exactly by their durations, and a
new one never starts before the previous one ended.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stb_origin import proc
from stb_origin.assets.channels import PASSTHROUGH, Channel, ChannelStatus
from stb_origin.live import encoder, retention
from stb_origin.live.encoder import Done, LiveRung
from stb_origin.live.publisher import Publisher, Superseded, next_position
from stb_origin.live.relay import Relays
from stb_origin.live.sources import InputArgs, SourceError, redacted
from stb_origin.observability import metrics
from stb_origin.packager.codecs import CodecError, ts_codecs
from stb_origin.services import Services

log = logging.getLogger("stb_origin.live")

POLL_S = 0.2
# ffmpeg's own start and its first segment, on top of failover_after_s.
START_ALLOWANCE_S = 6.0
PROBE_EVERY_S = 3.0
PROBE_TIMEOUT_S = 8.0
STABLE_PROBES = 2
CONFIG_EVERY_S = 2.0
STOP_GRACE_S = 5.0
EXPIRE_EVERY_S = 10.0
SLATE = -1  # OnAir.source of the slate
# The longest look at a source's start (a key frame every 8 s at most).
MAX_ANALYZE_S = 8.0
# What ffmpeg says when its look held no key frame: no picture size yet.
TOO_SHORT_A_LOOK = (b"Could not find codec parameters", b"dimensions not set")
NO_SIGNAL = "every source is silent or broken: the slate is on air"


@dataclass(frozen=True)
class Config:
    """What a run needs from the channel's row, read again when its revision moves."""

    sources: tuple[str, ...]
    ladder: str | tuple[int, ...]
    segment_s: float
    key_rotation_s: int
    failover_after_s: float
    dvr_window_s: int
    revision: int

    @classmethod
    def of(cls, channel: Channel) -> Config:
        ladder = channel.ladder if isinstance(channel.ladder, str) else tuple(channel.ladder)
        return cls(tuple(channel.sources), ladder, channel.segment_s, channel.key_rotation_s,
                   channel.failover_after_s, channel.dvr_window_s, channel.revision)


def load_config(services: Services, channel_id: str) -> Config | None:
    with services.db.session() as session:
        channel = session.get(Channel, channel_id)
        return Config.of(channel) if channel is not None else None


class OnAir:
    """One ffmpeg and what it has listed so far."""

    def __init__(self, source: int, renditions: tuple[str, ...], work: Path,
                 popen: subprocess.Popen[bytes], caps: dict[str, int],
                 relay_run: int | None) -> None:
        self.source = source  # index into Config.sources, or SLATE
        self.relay_run = relay_run  # a listener's: the relay ffmpeg carrying its encoder
        self.renditions = renditions
        self.caps = caps  # rendition -> its encoder's peak bit rate (none: passthrough)
        self.work = work
        self.popen = popen
        self.published = 0  # of its segments
        self.last_new = time.monotonic()  # when it last listed one (or started)
        self.base: datetime | None = None  # program date-time of its clock's zero
        self._lists = [encoder.SegmentList(work / name) for name in renditions]

    def complete(self) -> list[dict[str, Done]]:
        """Segments every rendition has listed and not yet published, in order."""
        lists = [segment_list.after(self.published) for segment_list in self._lists]
        ready = min(len(done) for done in lists)
        return [{name: lists[r][i] for r, name in enumerate(self.renditions)}
                for i in range(ready)]

    def failure(self, config: Config) -> str | None:
        if self.popen.poll() is not None:
            return f"ffmpeg ended with {self.popen.returncode}"
        allowed = config.failover_after_s + config.segment_s
        if self.published == 0:
            allowed += START_ALLOWANCE_S
        silent = time.monotonic() - self.last_new
        return f"no segment for {silent:.1f} s" if silent > allowed else None

    def stop(self) -> None:
        proc.stop(self.popen, STOP_GRACE_S)  # ffmpeg closes the segment it is in and lists it


class Probe:
    """ffprobe of one source in the background: does it give a picture now?"""

    def __init__(self, ffprobe: str, source: int, input_args: list[str]) -> None:
        self.source = source
        self._deadline = time.monotonic() + PROBE_TIMEOUT_S
        # Its streams found within a second, as the encoder finds them (ffprobe's own 5 s
        # would hold each switch back by that much).
        self._popen = subprocess.Popen(
            [ffprobe, "-v", "error", *encoder.live_input(), "-show_entries", "stream=codec_type",
             "-of", "csv=p=0", *input_args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)

    def result(self) -> bool | None:
        """True or False, or None while it still runs."""
        if self._popen.poll() is None:
            if time.monotonic() < self._deadline:
                return None
            self.cancel()
            return False
        assert self._popen.stdout is not None
        out = self._popen.stdout.read()
        self._popen.stdout.close()
        return self._popen.returncode == 0 and b"video" in out

    def cancel(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()
        if self._popen.stdout is not None:
            self._popen.stdout.close()


class ChannelRun:
    """The thread body that keeps one channel on air until told to stop."""

    def __init__(self, services: Services, channel_id: str, epoch: int, input_args: InputArgs,
                 stop: threading.Event) -> None:
        self._services = services
        self.channel_id = channel_id
        self.epoch = epoch
        self.stop_event = stop
        self._ffmpeg = proc.require("ffmpeg")
        self._relays = Relays(self._ffmpeg, channel_id)
        # Listeners are read through their relays, never directly (live.relay).
        self._input_args = self._relays.input_args(input_args)
        self._ffprobe = proc.require("ffprobe")
        self._preset = services.settings.live_preset
        self._attempt = 0
        self._seq = 0
        self._discontinuity = 0
        self._last_end: datetime | None = None
        self._stable: dict[int, int] = {}  # source -> answers in a row
        self._analyze_s: dict[str, float] = {}  # source URL -> its look, when longer
        self._probes = 0
        self._probe: Probe | None = None
        self._next_probe = 0.0

    def run(self) -> None:
        work = Path(tempfile.mkdtemp(prefix=f"stb-live-{self.channel_id}-"))
        try:
            self._run(work)
        except Superseded:
            log.warning("channel taken over by another runner, or deleted",
                        extra={"channel_id": self.channel_id, "epoch": self.epoch})
        except SourceError as exc:
            # A row written around the API's checks: say which rule, never the URL.
            log.error("channel has a source that is not accepted",
                      extra={"channel_id": self.channel_id, "reason": str(exc)})
            self._report_failure(f"a source is not accepted: {exc}")
        except Exception as exc:
            log.exception("channel run failed", extra={"channel_id": self.channel_id})
            self._report_failure(f"the runner failed: {type(exc).__name__}")
        finally:
            if self._probe is not None:
                self._probe.cancel()
            self._relays.stop()
            shutil.rmtree(work, ignore_errors=True)
            self._purge_if_deleted()

    def _purge_if_deleted(self) -> None:
        """The channel deleted under this run (which may have stored a segment after the
        API removed its objects): now that the run writes nothing more, remove them."""
        try:
            with self._services.db.session() as session:
                if session.get(Channel, self.channel_id) is not None:
                    return
            removed = retention.purge(self._services, self.channel_id)
            log.info("channel deleted; its objects removed",
                     extra={"channel_id": self.channel_id, "objects": removed})
        except Exception:  # noqa: BLE001 - the API's own pass removed what it saw
            log.warning("could not remove a deleted channel's objects",
                        extra={"channel_id": self.channel_id}, exc_info=True)

    def _report_failure(self, message: str) -> None:
        try:
            self._publisher(1).report(status=ChannelStatus.FAILED.value,
                                      error_message=message[:500])
        except Exception:  # noqa: BLE001 - the run is over either way
            log.warning("could not report the failure", extra={"channel_id": self.channel_id})

    def _publisher(self, key_rotation_s: int) -> Publisher:
        return Publisher(self._services, self.channel_id, self.epoch, key_rotation_s)

    def _run(self, work: Path) -> None:
        config = load_config(self._services, self.channel_id)
        if config is None:
            return
        position = next_position(self._services, self.channel_id)
        retention.sweep_unlisted(self._services, self.channel_id, position.seq)
        self._seq, self._discontinuity = position.seq, position.discontinuity
        self._last_end = position.not_before
        publisher = self._publisher(config.key_rotation_s)
        self._relays.update(config.sources)
        rungs = self._rungs(config)
        on_air = self._start(config, rungs, 0, work)
        next_config = time.monotonic() + CONFIG_EVERY_S
        next_expiry = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self._relays.tend()
                for segment in on_air.complete():
                    self._publish(publisher, on_air, segment)
                failure = on_air.failure(config) or self._encoder_left(on_air, config)
                if failure is not None and self._look_longer(on_air, config):
                    on_air = self._switch(on_air, config, rungs, on_air.source, work)
                    continue
                if failure is not None:
                    nxt = _next_source(on_air.source, len(config.sources))
                    log.warning("what is on air failed; switching", extra={
                        "channel_id": self.channel_id, "source": on_air.source,
                        "url": _shown(config, on_air.source), "next": nxt,
                        "next_url": _shown(config, nxt), "reason": failure})
                    metrics.LIVE_SWITCHES.inc(self._services.redis,
                                              reason="slate" if nxt == SLATE else "failover")
                    on_air = self._switch(on_air, config, rungs, nxt, work)
                    continue
                back = self._better_source(on_air, config)
                if back is not None:
                    log.info("a better source is stable again; switching back",
                             extra={"channel_id": self.channel_id, "source": back,
                                    "url": _shown(config, back)})
                    metrics.LIVE_SWITCHES.inc(self._services.redis, reason="back")
                    on_air = self._switch(on_air, config, rungs, back, work)
                    continue
                if time.monotonic() >= next_expiry:
                    next_expiry = time.monotonic() + EXPIRE_EVERY_S
                    retention.expire(self._services, self.channel_id, config.dvr_window_s)
                if time.monotonic() >= next_config:
                    next_config = time.monotonic() + CONFIG_EVERY_S
                    fresh = load_config(self._services, self.channel_id)
                    if fresh is None:
                        return  # deleted: the runner lets it go
                    if fresh.revision != config.revision:
                        log.info("channel changed; restarting",
                                 extra={"channel_id": self.channel_id})
                        metrics.LIVE_SWITCHES.inc(self._services.redis, reason="restart")
                        self._relays.update(fresh.sources)
                        config, rungs = fresh, self._rungs(fresh)
                        publisher = self._publisher(config.key_rotation_s)
                        on_air = self._switch(on_air, config, rungs, 0, work)
                        continue
                self.stop_event.wait(POLL_S)
        finally:
            on_air.stop()
        # Handing over: what ffmpeg completed on its way out is listed too.
        for segment in on_air.complete():
            self._publish(publisher, on_air, segment)

    def _rungs(self, config: Config) -> list[LiveRung]:
        if config.ladder == PASSTHROUGH:
            # Used by the slate only: one rung under the passthrough rendition's name.
            return [LiveRung(encoder.PASSTHROUGH_RENDITION, 720, 2_000_000)]
        if isinstance(config.ladder, str):  # auto
            return encoder.rungs_for(encoder.auto_ladder(self._source_height(config)))
        return encoder.rungs_for(config.ladder)

    def _source_height(self, config: Config) -> int:
        """The first answering source's picture height, for an automatic ladder (720 when
        none answers: the slate and the backups still get a sensible ladder)."""
        for source in config.sources:
            try:
                out = proc.run([self._ffprobe, "-v", "error", "-select_streams", "v:0",
                                "-show_entries", "stream=height", "-of", "csv=p=0",
                                *self._input_args(source)], timeout=PROBE_TIMEOUT_S)
                return int(out.stdout.split()[0])
            except (proc.ProcessFailed, ValueError, IndexError):
                continue
        return 720

    def _start(self, config: Config, rungs: list[LiveRung], source: int, work: Path) -> OnAir:
        self._attempt += 1
        folder = work / str(self._attempt)
        folder.mkdir()
        renditions = tuple(r.name for r in rungs)
        caps = {r.name: r.video_bitrate * 5 // 4 + encoder.AUDIO_BITRATE for r in rungs}
        if source == SLATE:
            argv = encoder.slate_argv(self._ffmpeg, rungs, config.segment_s, folder,
                                      self._preset)
        elif config.ladder == PASSTHROUGH:
            argv = encoder.passthrough_argv(
                self._ffmpeg, self._input_args(config.sources[source]), config.segment_s, folder,
                self._look(config.sources[source]))
            caps = {}  # what the source sends: measured
        else:
            argv = encoder.encode_argv(self._ffmpeg, self._input_args(config.sources[source]),
                                       rungs, config.segment_s, folder, self._preset,
                                       self._look(config.sources[source]))
        popen = proc.spawn(argv, log_path=folder / "ffmpeg.log", die_with_parent=True)
        status: dict[str, Any] = {"active_source": None if source == SLATE else source}
        if source == SLATE:
            status.update(status=ChannelStatus.NO_SIGNAL.value, error_message=NO_SIGNAL)
        self._publisher(1).report(**status)
        self._stable.clear()
        relay_run = None if source == SLATE else self._relays.run_of(config.sources[source])
        return OnAir(source, renditions, folder, popen, caps, relay_run)

    def _look(self, url: str) -> float:
        """How long ffmpeg looks at this source before it starts (``_look_longer``)."""
        return self._analyze_s.get(url, encoder.ANALYZE_S)

    def _look_longer(self, on_air: OnAir, config: Config) -> bool:
        """ffmpeg joined the source between key frames and its look ended before the
        next one: not a broken source. Started again on it with twice the look (up to
        MAX_ANALYZE_S, kept for this run), rather than failed over to a backup or the
        slate, which would cost a switch back once the probes find it well."""
        if on_air.source == SLATE or on_air.published or on_air.popen.poll() is None:
            return False
        url = config.sources[on_air.source]
        looked = self._look(url)
        try:
            with open(on_air.work / "ffmpeg.log", "rb") as file:
                said = file.read()[-8192:]
        except OSError:
            return False
        if looked >= MAX_ANALYZE_S or not any(line in said for line in TOO_SHORT_A_LOOK):
            return False
        self._analyze_s[url] = min(looked * 2, MAX_ANALYZE_S)
        log.info("no key frame within the source's first look; looking longer", extra={
            "channel_id": self.channel_id, "source": on_air.source,
            "url": _shown(config, on_air.source), "seconds": self._analyze_s[url]})
        return True

    def _encoder_left(self, on_air: OnAir, config: Config) -> str | None:
        """A listener on air whose encoder left (or was refused): switched from at once,
        not after a silence; and one that comes back brings new timestamps, which take
        a new ffmpeg and a discontinuity."""
        if on_air.relay_run is None:
            return None
        if not self._relays.left(config.sources[on_air.source], on_air.relay_run):
            return None
        return "the encoder left its listener"

    def _switch(self, on_air: OnAir, config: Config, rungs: list[LiveRung], source: int,
                work: Path) -> OnAir:
        on_air.stop()
        shutil.rmtree(on_air.work, ignore_errors=True)  # what it left unlisted is not used
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if on_air.published:
            self._discontinuity += 1  # a new encoder: new timestamps, maybe new parameters
        return self._start(config, rungs, source, work)

    def _better_source(self, on_air: OnAir, config: Config) -> int | None:
        """Probe, in turn, the sources better than what is on air (every source while
        the slate is); the first to answer STABLE_PROBES times in a row."""
        better = range(len(config.sources)) if on_air.source == SLATE else range(on_air.source)
        if not better:
            return None
        if self._probe is None:
            if time.monotonic() < self._next_probe:
                return None
            source = better[self._probes % len(better)]
            self._probes += 1
            self._probe = Probe(self._ffprobe, source, self._input_args(config.sources[source]))
            return None
        result = self._probe.result()
        if result is None:
            return None
        source, self._probe = self._probe.source, None
        self._next_probe = time.monotonic() + PROBE_EVERY_S
        self._stable[source] = self._stable.get(source, 0) + 1 if result else 0
        if self._stable[source] >= STABLE_PROBES:
            return source
        return None

    def _facts(self, name: str, path: Path, duration: float, cap: int) -> dict[str, Any]:
        """What the master says of a rendition, from its first segment of a run: its
        codecs and picture size as they are, its bandwidth the encoder's cap (or, for a
        passthrough, a quarter above what this segment measured)."""
        try:
            codecs = str(ts_codecs(path.read_bytes()))
        except CodecError:
            codecs = ""
        measured = _bitrate({name: path}, duration)
        facts: dict[str, Any] = {"name": name, "codecs": codecs,
                                 "bandwidth": max(cap, measured * 5 // 4)}
        try:
            size = proc.run([self._ffprobe, "-v", "error", "-select_streams", "v:0",
                             "-show_entries", "stream=width,height", "-of", "csv=p=0",
                             str(path)], timeout=PROBE_TIMEOUT_S).stdout.split()[0].split(",")
            facts["width"], facts["height"] = int(size[0]), int(size[1])
        except (proc.ProcessFailed, ValueError, IndexError):
            pass
        return facts

    def _publish(self, publisher: Publisher, on_air: OnAir, segment: dict[str, Done]) -> None:
        first = next(iter(segment.values()))
        duration = first.end - first.start
        if on_air.base is None:
            base = datetime.now(UTC) - timedelta(seconds=first.end)
            earliest = self._last_end
            if earliest is not None and base + timedelta(seconds=first.start) < earliest:
                base = earliest - timedelta(seconds=first.start)
            on_air.base = base
        starts_at = on_air.base + timedelta(seconds=first.start)
        files = {name: done.path for name, done in segment.items()}
        status: dict[str, Any] = {"input_bitrate": _bitrate(files, duration),
                                  "active_source": None if on_air.source == SLATE
                                  else on_air.source}
        if on_air.source == SLATE:
            status.update(status=ChannelStatus.NO_SIGNAL.value, error_message=NO_SIGNAL)
        if on_air.published == 0:
            status["renditions"] = [self._facts(name, path, duration, on_air.caps.get(name, 0))
                                    for name, path in files.items()]
        publisher.publish(self._seq, self._discontinuity, starts_at, duration, files, status)
        for done in segment.values():
            done.path.unlink(missing_ok=True)
        self._seq += 1
        self._last_end = starts_at + timedelta(seconds=duration)
        on_air.published += 1
        on_air.last_new = time.monotonic()
        metrics.LIVE_SEGMENTS.inc(self._services.redis,
                                  on_air="slate" if on_air.source == SLATE else "source")


def _shown(config: Config, source: int) -> str | None:
    """A source as logs may show it (secrets redacted); None for the slate."""
    return None if source == SLATE else redacted(config.sources[source])


def _next_source(current: int, count: int) -> int:
    """After a source, the next backup; after the last, the slate; the slate restarts."""
    if current == SLATE or current + 1 >= count:
        return SLATE
    return current + 1


def _bitrate(files: dict[str, Path], duration: float) -> int:
    """Bits per second of the biggest rendition's segment (the best a box can pull)."""
    size = max(path.stat().st_size for path in files.values())
    return int(size * 8 / duration) if duration > 0 else 0



