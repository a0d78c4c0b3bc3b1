"""Webhooks: how fast events become deliveries, and what one attempt costs in a real
`stb-origin worker` (RQ forks a work horse per job) next to the same jobs run in
process by RQ's SimpleWorker (no fork), side by side.

One private redis-server, a SQLite database under a temporary STB_DATA_DIR, and a
receiver (http.server, threads) on 127.0.0.1 answering 204. --webhooks webhooks
subscribe to `title.updated`; each round publishes --events such events, then

    consume     turns them into deliveries as the server's consumer does
                (Consumer.turn until caught up: read the group, insert the rows,
                acknowledge, queue the attempts): deliveries/s
    attempts    runs every queued attempt, alternating which way goes first:
                `stb-origin worker --burst` as a process, or a SimpleWorker in this
                process; attempts/s from the first arrival at the receiver to the
                last (process start-up excluded), and the wall time including it

    .venv/bin/python bench/webhooks.py
    .venv/bin/python bench/webhooks.py --events 400 --webhooks 2 --rounds 3

Needs: apt-get install -y redis-server.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import machine_facts, median, print_table, warn_if_busy
from rq import SimpleWorker
from servers import start_redis, stb_env

from stb_origin import eventlog, migrations
from stb_origin.db.types import new_id
from stb_origin.queues import webhook_queue
from stb_origin.services import build_services
from stb_origin.settings import Settings
from stb_origin.webhooks import subscriptions
from stb_origin.webhooks.consumer import Consumer
from stb_origin.workers import jobs


class Arrivals:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()

    def note(self) -> None:
        with self.lock:
            self.times.append(time.monotonic())


def start_receiver(arrivals: Arrivals) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.end_headers()
            arrivals.note()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


class QuietWorker(SimpleWorker):
    """No pubsub thread: a burst takes no remote commands, and its stop can wait
    out RQ's 60 s poll otherwise."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def publish(redis: Any, count: int) -> None:
    with redis.pipeline(transaction=False) as pipe:
        for _ in range(count):
            pipe.xadd(eventlog.STREAM, eventlog.encode(eventlog.CATALOG, {
                "title": new_id(), "change": "updated"}))
        pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--webhooks", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    warn_if_busy()
    print(machine_facts())
    with tempfile.TemporaryDirectory(prefix="stb-bench-webhooks-") as tmp:
        redis_process, redis_url = start_redis(Path(tmp) / "redis")
        try:
            run(Path(tmp), redis_url, args)
        finally:
            redis_process.stop()


def run(tmp: Path, redis_url: str, args: argparse.Namespace) -> None:
    settings = Settings(data_dir=tmp / "data", redis_url=redis_url, webhooks_allow_private=True,
                        webhooks_allow_http=True)
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    arrivals = Arrivals()
    server, url = start_receiver(arrivals)
    with services.db.session() as session:
        for _ in range(args.webhooks):
            subscriptions.create(session, services.envelope, url, ["title.updated"], True)
    consumer = Consumer(services, name="bench")
    consumer.turn()  # the group, before the first event
    jobs.use_settings(settings)
    results: dict[str, list[tuple[float, float, float]]] = {"worker process": [],
                                                             "in process": []}
    deliveries = args.events * args.webhooks
    for round_ in range(args.rounds):
        order = list(results) if round_ % 2 == 0 else list(results)[::-1]
        for mode in order:
            publish(services.redis, args.events)
            started = time.monotonic()
            while consumer.turn():
                pass
            consume_s = time.monotonic() - started
            assert len(webhook_queue(services.redis, settings)) == deliveries
            arrivals.times.clear()
            started = time.monotonic()
            if mode == "worker process":
                subprocess.run([sys.executable, "-m", "stb_origin.cli", "worker", "--burst"],
                               env=stb_env(settings.to_env()), check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                queue = webhook_queue(services.redis, settings)
                QuietWorker([queue], connection=services.redis).work(
                    burst=True, with_scheduler=False, logging_level="WARNING")
            wall_s = time.monotonic() - started
            assert len(arrivals.times) == deliveries, (mode, len(arrivals.times))
            spread = arrivals.times[-1] - arrivals.times[0]
            results[mode].append((deliveries / consume_s, (deliveries - 1) / spread, wall_s))
    server.shutdown()
    services.close()
    print(f"\n{args.events} events x {args.webhooks} webhooks = {deliveries} deliveries a round,"
          f" median of {args.rounds} rounds")
    rows = []
    for mode, samples in results.items():
        rows.append([mode, round(median([s[0] for s in samples])),
                     round(median([s[1] for s in samples]), 1),
                     round(median([s[2] for s in samples]), 2)])
    print_table(["attempts by", "consume deliveries/s", "attempts/s", "attempts wall s"], rows)
    fork, local = rows[0][2], rows[1][2]
    print(f"\nattempts/s, in process / worker process: {local / fork:.1f}x")


if __name__ == "__main__":
    main()
