"""Real-time events: the fan-out of one server process with many WebSockets open,
under uvicorn (`stb-origin serve`) and under granian (one worker), side by side.

Each server gets --sockets WebSocket clients (GET /v1/events, a content-team
token, topic `assets`), all in this process on asyncio, over one private Redis.
Then, for each server, alternating which goes first:

    latency     --latency-events asset status changes, one at a time, published as
                the pipeline publishes an asset turning `ready`
                (assets.announce.asset_changed: one XADD after the commit); each
                carries its wall-clock send time, and every socket notes when it
                heard it: p50 and p99 over all deliveries, publish to heard
    throughput  --events events published back to back (pipelined XADDs); the
                time from the first publish until every socket has heard the
                last: events/s through the fan-out and deliveries/s (events x
                sockets)

The clients share the machine with the server (2 cores here), so the figures
are a floor for the server; CPU seconds of the server process tree are printed
too, as they move least when the machine is busy.

    .venv/bin/python bench/events.py
    .venv/bin/python bench/events.py --sockets 100 --events 500 --latency-events 50

Needs: apt-get install -y redis-server; granian and websockets (the project's venv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
from dataclasses import dataclass, field

from common import OUT, OtherCpu, machine_facts, print_table, process_tree_cpu_s, warn_if_busy
from redis import Redis
from servers import Process, start_granian, start_redis, start_uvicorn, stb_env
from websockets.asyncio.client import ClientConnection, connect

from stb_origin import eventlog, migrations
from stb_origin.assets.announce import asset_changed
from stb_origin.events import slots
from stb_origin.services import build_services
from stb_origin.settings import Settings

WORK = OUT / "events"
CONNECT_BATCH = 50
WAIT_S = 300.0


@dataclass
class Clients:
    """The sockets of one server and what each heard: offset -> receive times."""

    sockets: list[ClientConnection]
    heard: dict[str, list[float]] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    def expect(self, offset: str) -> asyncio.Event:
        return self.done.setdefault(offset, asyncio.Event())

    async def read(self, ws: ClientConnection) -> None:
        try:
            await self._read(ws)
        finally:
            if ws.close_code not in (None, 1000):
                print(f"a socket was closed: {ws.close_code} {ws.close_reason}")

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message["type"] != "event":
                continue
            times = self.heard.setdefault(message["id"], [])
            times.append(now)
            if "sent" in message["data"]:
                self.sent_at[message["id"]] = message["data"]["sent"]
            if len(times) == len(self.sockets):
                self.expect(message["id"]).set()


@dataclass
class Figures:
    server: str
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    events_s: list[float] = field(default_factory=list)
    deliveries_s: list[float] = field(default_factory=list)


async def open_sockets(port: int, token: str, count: int) -> Clients:
    url = f"ws://127.0.0.1:{port}/v1/events?topics=assets"

    async def one() -> ClientConnection:
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           open_timeout=WAIT_S, max_queue=None)
        first = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        if first["type"] != "subscribed":
            raise SystemExit(f"not subscribed: {first}")
        return ws

    sockets: list[ClientConnection] = []
    for start in range(0, count, CONNECT_BATCH):
        sockets += await asyncio.gather(*(one() for _ in range(min(CONNECT_BATCH,
                                                                    count - start))))
    clients = Clients(sockets)
    clients.readers = [asyncio.create_task(clients.read(ws)) for ws in sockets]
    return clients


async def latency(clients: Clients, services_redis: Redis, events: int) -> tuple[float, float]:
    delays: list[float] = []
    for n in range(events):
        sent = time.time()
        offset = await asyncio.to_thread(
            eventlog.publish, services_redis, eventlog.ASSETS,
            {"asset": f"{n:032x}", "status": "ready", "progress": 100, "error": None,
             "sent": sent})
        if offset is None:
            raise SystemExit("Redis refused the event")
        await asyncio.wait_for(clients.expect(offset).wait(), WAIT_S)
        delays += [heard - sent for heard in clients.heard[offset]]
    ordered = sorted(delays)
    return (statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000)


async def throughput(clients: Clients, redis: Redis, events: int) -> tuple[float, float]:
    def publish_all() -> list[str]:
        pipe = redis.pipeline(transaction=False)
        for n in range(events):
            pipe.xadd(eventlog.STREAM, eventlog.encode(eventlog.ASSETS, {"n": n}),
                      maxlen=eventlog.MAX_EVENTS, approximate=True)
        return [o.decode() for o in pipe.execute()]

    started = time.time()
    offsets = await asyncio.to_thread(publish_all)
    await asyncio.wait_for(clients.expect(offsets[-1]).wait(), WAIT_S)
    took = max(clients.heard[offsets[-1]]) - started
    missing = [o for o in offsets if len(clients.heard.get(o, ())) != len(clients.sockets)]
    if missing:
        raise SystemExit(f"{len(missing)} events did not reach every socket")
    return events / took, events * len(clients.sockets) / took


async def measure(port: int, token: str, redis: Redis, args: argparse.Namespace,
                  figures: Figures) -> None:
    clients = await open_sockets(port, token, args.sockets)
    try:
        # One event before measuring: every reader is running.
        await latency(clients, redis, 1)
        p50, p99 = await latency(clients, redis, args.latency_events)
        events_s, deliveries_s = await throughput(clients, redis, args.events)
    finally:
        for task in clients.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in clients.sockets), return_exceptions=True)
        # The server gives the slots back as each handler ends: wait for the last,
        # so that the next server's sockets are not refused as too many.
        deadline = time.monotonic() + WAIT_S
        while redis.zcard(slots.subject("operator")) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    figures.p50_ms.append(p50)
    figures.p99_ms.append(p99)
    figures.events_s.append(events_s)
    figures.deliveries_s.append(deliveries_s)


def run(args: argparse.Namespace) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    warn_if_busy()
    redis_process, redis_url = start_redis(WORK / "redis")
    servers: list[tuple[str, Process, int]] = []
    try:
        env = {"STB_DATA_DIR": str(WORK / "data"), "STB_REDIS_URL": redis_url,
               # One token for every socket: its subject may have them all.
               "STB_EVENTS_PER_SUBJECT": str(args.sockets + 10),
               # The burst is queued whole: the figure is throughput, not slow-consumer drops.
               "STB_EVENTS_QUEUE": str(args.events + 10)}
        settings = Settings(data_dir=WORK / "data", redis_url=redis_url)
        migrations.upgrade(settings.resolved_database_url)
        services = build_services(settings)
        token = services.signer.issue(["assets:read"], ttl_s=3600)
        # Check the path end to end once: the announce the pipeline makes.
        asset_changed(services.redis, "0" * 32, "ready", 100)
        process, port = start_uvicorn(stb_env(env), WORK, name="uvicorn")
        servers.append(("uvicorn", process, port))
        process, port = start_granian(stb_env(env), WORK, name="granian")
        servers.append(("granian", process, port))
        figures = {name: Figures(name) for name, _p, _port in servers}
        other = OtherCpu()
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for name, _process, port in order:
                asyncio.run(measure(port, token, services.redis, args, figures[name]))
        cpu = {name: process_tree_cpu_s(process.pid) for name, process, _port in servers}
        cpu_note = other.report(sum(cpu.values()))
        services.close()
    finally:
        for _name, process, _port in servers:
            process.stop()
        redis_process.stop()

    print(f"\n{machine_facts()}")
    print(f"{args.sockets} WebSockets on one server process (clients in one asyncio process"
          f" on the same machine); latency over {args.latency_events} events one at a time,"
          f" throughput over {args.events} back to back; medians of {args.rounds} rounds")
    print_table(["server", "publish->heard p50 ms", "p99 ms", "events/s", "deliveries/s",
                 "server CPU s"],
                [(f.server, f"{statistics.median(f.p50_ms):.1f}",
                  f"{statistics.median(f.p99_ms):.1f}", f"{statistics.median(f.events_s):.0f}",
                  f"{statistics.median(f.deliveries_s):.0f}", f"{cpu[f.server]:.1f}")
                 for f in figures.values()])
    print(cpu_note)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200,
                        help="events published back to back for the throughput figure")
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
