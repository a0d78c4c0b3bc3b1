"""`stb-origin channel-runner`: keeps channels on air, each on exactly one runner.

A thread of the runner renews the leases of all its channels (``live.lease``,
in one round trip) several times per lease, asking only Redis, so that a slow
database cannot make channels on air lapse. Every second the runner notes the
channels whose run ended (released, to be claimed again) and claims channels no
runner holds, up to its fair share, each run in a thread of its own
(``live.channel_run``). A runner that dies stops renewing: its leases expire
after ``runner_lease_s`` and the others claim its channels at their next look,
so a channel is back on air within the lease plus one look plus the encoder's
first segment. A lease lost while running (Redis forgot, the process was
paused) stops that run: its epoch is stale, so it could write nothing anyway.

SIGTERM hands over: the runner stops claiming, each run stops its ffmpeg
(which completes the segment it is in), lists what is complete and returns,
and the leases are released, so the other runners take over at once instead of
after the lease expires.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from stb_origin.assets.channels import Channel
from stb_origin.live.channel_run import ChannelRun
from stb_origin.live.lease import Leases
from stb_origin.live.sources import InputArgs, input_args
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings

log = logging.getLogger("stb_origin.live")

LOOK_EVERY_S = 1.0
# Touched at every look, whether or not Redis and the database answer: the
# container probes in deploy/ read its age.
HEARTBEAT_FILE = "channel-runner.heartbeat"
JOIN_TIMEOUT_S = 20.0


@dataclass
class _Held:
    run: ChannelRun
    thread: threading.Thread


class Runner:
    def __init__(self, services: Services, input_args: InputArgs,
                 runner_id: str | None = None) -> None:
        self._services = services
        self._input_args = input_args
        self.runner_id = runner_id or f"{socket.gethostname()}:{os.getpid()}"
        self._leases = Leases(services.redis, services.db, self.runner_id,
                              services.settings.runner_lease_s)
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()  # _held, shared with the lease keeper
        self._heartbeat = services.settings.data_dir / HEARTBEAT_FILE

    def serve(self, stop: threading.Event) -> None:
        log.info("channel runner started", extra={"runner": self.runner_id})
        looking = threading.Event()
        keeper = threading.Thread(target=self._keep_leases, args=(looking,),
                                  name="lease-keeper", daemon=True)
        keeper.start()
        try:
            while not stop.is_set():
                started = time.monotonic()
                self._heartbeat.touch()
                try:
                    self._look()
                except Exception:
                    # Redis or the database away for a moment: the runs go on, the
                    # leases may lapse (then the runs are fenced out and stop).
                    log.exception("channel runner could not look; retrying")
                stop.wait(max(0.0, LOOK_EVERY_S - (time.monotonic() - started)))
        finally:
            looking.set()
            keeper.join()
            self._hand_over()
        log.info("channel runner stopped", extra={"runner": self.runner_id})

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def _look(self) -> None:
        self._leases.announce()
        with self._lock:
            ended = [c for c, held in self._held.items() if not held.thread.is_alive()]
            for channel_id in ended:
                # Ended (deleted, superseded or failed): free it for the next claim.
                del self._held[channel_id]
        for channel_id in ended:
            self._leases.release(channel_id)
        with self._services.db.session() as session:
            channel_ids = list(session.scalars(select(Channel.id).order_by(Channel.id)))
        share = self._leases.fair_share(len(channel_ids))
        limit = self._services.settings.runner_max_channels
        if limit:
            share = min(share, limit)
        for channel_id in channel_ids:
            with self._lock:
                if len(self._held) >= share:
                    break
                if channel_id in self._held:
                    continue
            epoch = self._leases.claim(channel_id)
            if epoch is not None:
                self._start(channel_id, epoch)

    def _keep_leases(self, stop: threading.Event) -> None:
        """Renew every lease held, a few times per lease, from a thread that asks only
        Redis: claims and runs wait on the database (a round of claims at start-up or
        takeover, writes queueing on a busy core), and must not make channels that
        are on air lapse meanwhile."""
        while not stop.wait(self._leases.ttl_ms / 4000):
            try:
                self._renew()
            except Exception:  # noqa: BLE001 - Redis away: the next round tries again
                log.warning("leases not renewed; retrying", extra={"runner": self.runner_id})

    def _renew(self) -> None:
        with self._lock:
            channel_ids = list(self._held)
        lost = self._leases.renew(channel_ids)
        with self._lock:
            stopping = {c: self._held[c].run.stop_event for c in lost if c in self._held}
        for channel_id, event in stopping.items():
            if not event.is_set():
                log.warning("lease lost; stopping the channel",
                            extra={"channel_id": channel_id, "runner": self.runner_id})
                event.set()

    def _start(self, channel_id: str, epoch: int) -> None:
        run = ChannelRun(self._services, channel_id, epoch, self._input_args, threading.Event())
        thread = threading.Thread(target=run.run, name=f"channel-{channel_id[:8]}", daemon=True)
        with self._lock:
            self._held[channel_id] = _Held(run, thread)
        thread.start()
        log.info("channel claimed", extra={"channel_id": channel_id, "epoch": epoch,
                                           "runner": self.runner_id})

    def _hand_over(self) -> None:
        for held in self._held.values():
            held.run.stop_event.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for channel_id, held in self._held.items():
            held.thread.join(max(0.0, deadline - time.monotonic()))
            try:
                self._leases.release(channel_id)
            except Exception:  # noqa: BLE001 - it expires on its own
                log.warning("lease not released", extra={"channel_id": channel_id})
        self._held.clear()
        try:
            self._leases.withdraw()
        except Exception:  # noqa: BLE001
            log.warning("runner not withdrawn", extra={"runner": self.runner_id})


def run_runner(settings: Settings) -> int:
    """The service: until SIGTERM or SIGINT, then hand over and return 0."""
    services = build_services(settings)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        Runner(services, input_args).serve(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        services.close()
    return 0
