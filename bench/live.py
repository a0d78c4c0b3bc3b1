"""Live channels: what a box waits for, and what a failure costs.

Each part runs real pieces (a private redis-server, SQLite or --database-url,
`stb-origin channel-runner` processes, ffmpeg as the encoder pushing MPEG-TS
over UDP) and prints a table:

    render     a 4-hour DVR window at 2 s segments (7,200 segments): the start-over
               playlist and a 1-hour catch-up, made by the origin's generator
               (index query + text), p50/p99 of --renders each; and a process's
               first ask, which reads the whole window (later asks read only the
               segments listed since)
    listing    how long after a segment's last frame (its PDT + duration) it is
               listed: what a box waits beyond the encoder, before its own buffer
    takeover   SIGKILL the runner holding the channel, with a second runner up:
               seconds until the other lists its first segment (--rounds)
    failover   kill the primary source's encoder: seconds until the backup's first
               segment is listed (--rounds)
    zap        channel change in hls.js (headless Chromium) through the project's
               nginx edge (deploy/cdn/nginx.conf): --channels live 360p channels on
               one runner, --zaps changes from one to the next, each watched 3 s;
               ms from the change to the new channel's first frame on screen
    capacity   channels per core: one runner pinned to core 1 keeps N channels on air
               (passthrough, then a 3-rung 720p ladder at the default preset), fed
               by cheap senders on core 0 (a 720p H.264 file looped with -c copy);
               the runner tree's CPU over --capacity-seconds (and the runner's own,
               without its ffmpegs), and whether every channel kept real time
               (media seconds listed vs wall clock, worst channel)

    .venv/bin/python bench/live.py                    # every part
    .venv/bin/python bench/live.py render --renders 50

Goals (issue 11): render p99 <= 50 ms; takeover <= 10 s; listing delay plus a
player's three target durations <= 3 segments + 1 s; channel change p50 <= 1 s
on loopback; >= 50 passthrough channels on one core.

Needs: redis-server, ffmpeg; a quiet machine.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import machine_facts, own_cpu_s, print_table, process_tree_cpu_s, warn_if_busy
from servers import REPO, Process, require, start_redis, start_uvicorn, stb_env

sys.path.insert(0, str(REPO))

from stb_origin import migrations  # noqa: E402
from stb_origin.assets.channels import Channel  # noqa: E402
from stb_origin.db.types import new_id  # noqa: E402
from stb_origin.live.index import LiveSegment  # noqa: E402
from stb_origin.live.served import LivePlaylists  # noqa: E402
from stb_origin.services import Services, build_services  # noqa: E402
from stb_origin.settings import Settings  # noqa: E402

CLI = [sys.executable, "-m", "stb_origin.cli"]
SEGMENT_S = 2.0
DVR_S = 4 * 3600


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


@contextmanager
def stack(work: Path, database_url: str | None, **fields: object) -> Iterator[Services]:
    redis, redis_url = start_redis(work / "redis")
    settings = Settings(data_dir=work / "data", redis_url=redis_url, database_url=database_url,
                        reconcile_interval_s=0, **fields)  # type: ignore[arg-type]
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        yield services
    finally:
        services.close()
        redis.stop()


def add_channel(services: Services, sources: list[str], **fields: object) -> str:
    channel_id = new_id()
    with services.db.session() as session:
        session.add(Channel(id=channel_id, name="bench", sources=sources,
                            **{"ladder": [360], "segment_s": SEGMENT_S, **fields}))
    return channel_id


# -- render ----------------------------------------------------------------------------

def render(work: Path, database_url: str | None, renders: int) -> list[list[object]]:
    rows = []
    with stack(work, database_url) as services:
        channel_id = add_channel(services, ["udp://127.0.0.1:9"], dvr_window_s=DVR_S)
        now = datetime.now(UTC)
        first = now - timedelta(seconds=DVR_S - 60)
        count = int((DVR_S - 60) / SEGMENT_S)
        with services.db.session() as session:
            channel = session.get(Channel, channel_id)
            assert channel is not None
            channel.renditions = [{"name": "360p", "codecs": "avc1.64001e,mp4a.40.2",
                                   "bandwidth": 1_000_000, "width": 640, "height": 360}]
            session.add_all(LiveSegment(
                channel_id=channel_id, seq=n, starts_at=first + timedelta(seconds=SEGMENT_S * n),
                duration=SEGMENT_S, discontinuity=n // 1800, epoch=1, key_id=f"k{n // 300}",
                iv=os.urandom(16).hex(), renditions=["360p"]) for n in range(count))
        start = int(first.timestamp())
        startover = f"startover-{start}"
        # A process's first ask reads the whole window; later ones only what was listed since.
        cold = [timed(LivePlaylists(services), channel_id, startover)[0] for _ in range(10)]
        rows.append(["start-over, 4 h, a process's first ask", 7170,
                     f"{percentile(cold, 50):.1f}", f"{percentile(cold, 99):.1f}"])
        playlists = LivePlaylists(services)
        for name, folder in (("start-over, 4 h", startover),
                             ("catch-up, 1 h", f"catchup-{start}-{start + 3600}")):
            took, listed = [], 0
            for _ in range(renders):
                ms, listed = timed(playlists, channel_id, folder)
                took.append(ms)
            rows.append([name, listed, f"{percentile(took, 50):.1f}",
                         f"{percentile(took, 99):.1f}"])
    return rows


def timed(playlists: LivePlaylists, channel_id: str, folder: str) -> tuple[float, int]:
    """Milliseconds to make the playlist (index read and text), and its segments."""
    began = time.perf_counter()
    made, _keep = playlists.make(channel_id, (folder, "360p.m3u8"))
    took = 1000 * (time.perf_counter() - began)
    assert made is not None
    return took, made.body.count(b"#EXTINF")


# -- real runners ------------------------------------------------------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def encoder(port: int, log_dir: Path, name: str) -> Process:
    ffmpeg = require("ffmpeg", "apt-get install -y ffmpeg")
    return Process(name, [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                          "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                          "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                          "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
                          "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac",
                          "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"], log_dir)


def source(port: int) -> str:
    return f"udp://127.0.0.1:{port}?timeout=3000000&overrun_nonfatal=1"


def runner(services: Services, name: str) -> Process:
    return Process(name, [*CLI, "channel-runner"], services.settings.data_dir / "logs",
                   env=stb_env(services.settings.to_env()), cwd=REPO)


def segments(services: Services, channel_id: str) -> list[LiveSegment]:
    with services.db.session() as session:
        return list(session.query(LiveSegment).filter_by(channel_id=channel_id)
                    .order_by(LiveSegment.seq))


def wait(what: str, check: Callable[[], bool], timeout: float = 60) -> float:
    """Seconds until check() held (monotonic clock)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic()


def listing(work: Path, database_url: str | None, seconds: float) -> list[list[object]]:
    with stack(work, database_url) as services:
        port = free_udp_port()
        channel_id = add_channel(services, [source(port)])
        logs = services.settings.data_dir / "logs"
        feed, one = encoder(port, logs, "encoder"), runner(services, "runner")
        delays: list[float] = []
        try:
            seen = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                rows = segments(services, channel_id)
                now = datetime.now(UTC)
                for row in rows[seen:]:
                    if seen:  # the first waits for the encoder's start
                        end = row.starts_at + timedelta(seconds=row.duration)
                        delays.append((now - end).total_seconds())
                seen = len(rows)
                time.sleep(0.02)
        finally:
            one.stop()
            feed.stop()
    return [["listed after the segment's last frame (s)", len(delays),
             f"{percentile(delays, 50):.2f}", f"{percentile(delays, 99):.2f}",
             f"{percentile(delays, 99) + 3 * SEGMENT_S:.2f}"]]


def takeover(work: Path, database_url: str | None, rounds: int) -> list[float]:
    times = []
    with stack(work, database_url) as services:
        port = free_udp_port()
        channel_id = add_channel(services, [source(port)])
        logs = services.settings.data_dir / "logs"
        feed = encoder(port, logs, "encoder")
        runners = [runner(services, "runner-0"), runner(services, "runner-1")]
        try:
            for n in range(rounds):
                wait("on air", lambda: len(segments(services, channel_id)) >= 3)
                held = services.redis.get(f"stb:live:lease:{channel_id}")
                owner = next(r for r in runners if held and held.decode().endswith(f":{r.pid}"))
                epoch = segments(services, channel_id)[-1].epoch
                os.killpg(owner.pid, signal.SIGKILL)
                killed = time.monotonic()
                back = wait("taken over", lambda held=epoch:  # type: ignore[misc]
                            segments(services, channel_id)[-1].epoch > held)
                times.append(back - killed)
                owner.popen.wait()
                runners[runners.index(owner)] = runner(services, f"runner-{n + 2}")
        finally:
            for one in runners:
                one.stop()
            feed.stop()
    return times


def failover(work: Path, database_url: str | None, rounds: int) -> list[float]:
    times = []
    with stack(work, database_url) as services:
        ports = [free_udp_port(), free_udp_port()]
        channel_id = add_channel(services, [source(p) for p in ports], failover_after_s=2.0)
        logs = services.settings.data_dir / "logs"
        backup = encoder(ports[1], logs, "backup")
        one = runner(services, "runner")
        try:
            for n in range(rounds):
                primary = encoder(ports[0], logs, f"primary-{n}")
                wait("on the primary", lambda: _on(services, channel_id, 0), timeout=120)
                wait("primary segments", lambda: _on(services, channel_id, 0, after=2))
                primary.stop()
                stopped = time.monotonic()
                back = wait("on the backup", lambda: _on(services, channel_id, 1, after=1))
                times.append(back - stopped)
        finally:
            one.stop()
            backup.stop()
    return times


# -- zap -------------------------------------------------------------------------------

PLAYER = REPO / "tests" / "player"
HLS_JS = PLAYER / "node_modules" / "hls.js" / "dist" / "hls.min.js"
CHROMIUM = "/usr/bin/chromium"


def zap(work: Path, database_url: str | None, channels: int, zaps: int) -> list[float]:
    require("nginx", "apt-get install -y nginx libnginx-mod-http-js")
    if not Path(CHROMIUM).exists():
        raise SystemExit("chromium not found: apt-get install -y chromium")
    if not HLS_JS.exists():
        raise SystemExit(f"hls.js not found: (cd {PLAYER} && npm ci)")
    from playwright.sync_api import sync_playwright

    from tests.cdn.nginx import Nginx

    times: list[float] = []
    with stack(work, database_url) as services:
        logs = services.settings.data_dir / "logs"
        ports = [free_udp_port() for _ in range(channels)]
        ids = [add_channel(services, [source(port)]) for port in ports]
        feeds = [encoder(port, logs, f"encoder-{n}") for n, port in enumerate(ports)]
        one = runner(services, "runner")
        origin, origin_port = start_uvicorn(stb_env(services.settings.to_env()), logs)
        edge = Nginx(work / "edge", f"127.0.0.1:{origin_port}").start()
        token = services.signer.issue(["playback"])
        try:
            wait("every channel on air", lambda: all(len(segments(services, c)) >= 3
                                                     for c in ids), timeout=120)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
                page = browser.new_page()
                page.goto(edge.base_url + "/hls/0/player")  # a 404 of the edge's origin
                page.set_content((PLAYER / "zap.html").read_text())
                page.add_script_tag(path=str(HLS_JS))
                for n in range(zaps + 1):
                    src = f"{edge.base_url}/hls/{ids[n % channels]}/live/master.m3u8"
                    result = page.evaluate("([src, token]) => zap(src, token, 20000)",
                                           [src, token])
                    if "error" in result:
                        raise SystemExit(f"zap {n}: {result['error']}")
                    if n:  # the first start warms the browser up: not a change
                        times.append(result["firstFrame"])
                    time.sleep(3)
                browser.close()
        finally:
            edge.stop()
            origin.stop()
            one.stop()
            for feed in feeds:
                feed.stop()
    return times


# -- capacity --------------------------------------------------------------------------

def feed_file(work: Path) -> Path:
    """20 s of 720p25 H.264 (2-s GOPs) + AAC in MPEG-TS: what a contribution feed is."""
    path = work / "feed-720p.ts"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        ffmpeg = require("ffmpeg", "apt-get install -y ffmpeg")
        subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=20",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
                        "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "50",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", str(path)],
                       check=True)
    return path


def capacity(work: Path, database_url: str | None, channels: int, ladder: str | list[int],
             seconds: float) -> list[object]:
    taskset = require("taskset", "apt-get install -y util-linux")
    ffmpeg = require("ffmpeg", "apt-get install -y ffmpeg")
    feed = feed_file(work.parent / "feed")
    with stack(work, database_url) as services:
        logs = services.settings.data_dir / "logs"
        ids, senders = [], []
        for n in range(channels):
            port = free_udp_port()
            ids.append(add_channel(services, [source(port)], ladder=ladder))
            senders.append(Process(f"sender-{n}", [
                taskset, "-c", "0", ffmpeg, "-nostdin", "-loglevel", "error", "-re",
                "-stream_loop", "-1", "-i", str(feed), "-c", "copy", "-f", "mpegts",
                f"udp://127.0.0.1:{port}?pkt_size=1316"], logs))
        one = Process("runner", [taskset, "-c", "1", *CLI, "channel-runner"], logs,
                      env=stb_env(services.settings.to_env()), cwd=REPO)
        try:
            wait("every channel on air", lambda: all(len(segments(services, c)) >= 2
                                                     for c in ids), timeout=120)
            before = {c: len(segments(services, c)) for c in ids}
            tree_before, own_before = process_tree_cpu_s(one.pid), own_cpu_s(one.pid)
            started = time.monotonic()
            time.sleep(seconds)
            tree = process_tree_cpu_s(one.pid) - tree_before
            own = own_cpu_s(one.pid) - own_before
            elapsed = time.monotonic() - started
            # Media seconds listed, not segments: a passthrough cuts at the feed's key
            # frames, so a segment may be longer than the target when one falls short.
            listed = [sum(row.duration for row in segments(services, c)[before[c]:])
                      for c in ids]
        finally:
            one.stop()
            for sender in senders:
                sender.stop()
    per_channel = tree / elapsed / channels  # of one core
    return [ladder if isinstance(ladder, str) else "/".join(f"{h}p" for h in ladder),
            channels, f"{100 * tree / elapsed:.0f}%", f"{100 * own / elapsed:.0f}%",
            f"{100 * per_channel:.2f}%", f"{1 / per_channel:.0f}" if per_channel > 0 else "-",
            f"{min(listed) / elapsed:.2f}"]


def _on(services: Services, channel_id: str, source_index: int, after: int = 0) -> bool:
    """Whether source_index is on air and has listed ``after`` segments since it came on."""
    with services.db.session() as session:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.active_source != source_index:
            return False
    if after == 0:
        return True
    rows = segments(services, channel_id)
    return len(rows) > after and rows[-1].discontinuity == rows[-1 - after].discontinuity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = ["render", "listing", "takeover", "failover", "zap", "capacity"]
    # Checked below: with nargs="*", Python 3.11's argparse checks an empty list
    # against the choices and refuses it.
    parser.add_argument("parts", nargs="*", help=f"any of {', '.join(parts)}; default: all")
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--listing-seconds", type=float, default=60)
    parser.add_argument("--channels", type=int, default=3, help="zap: channels on air")
    parser.add_argument("--zaps", type=int, default=20)
    parser.add_argument("--passthrough-channels", type=int, default=50)
    parser.add_argument("--ladder-channels", type=int, default=1)
    parser.add_argument("--capacity-seconds", type=float, default=30)
    parser.add_argument("--database-url", default=None, help="default: SQLite (embedded)")
    args = parser.parse_args()
    args.parts = args.parts or parts
    if unknown := set(args.parts) - set(parts):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    print(machine_facts())
    warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="stb-live-bench-") as tmp:
        work = Path(tmp)
        if "render" in args.parts:
            print("\nDVR playlists from the index, 2 s segments (ms)")
            print_table(["playlist", "segments", "p50", "p99"],
                        render(work / "render", args.database_url, args.renders))
        if "listing" in args.parts:
            print(f"\nlisting delay over {args.listing_seconds:g} s, one 360p channel (s)")
            print_table(["what", "segments", "p50", "p99", "p99 + 3 segments (player)"],
                        listing(work / "listing", args.database_url, args.listing_seconds))
        if "takeover" in args.parts:
            took = takeover(work / "takeover", args.database_url, args.rounds)
            print("\ntakeover after SIGKILL (s), lease 5 s")
            print_table(["rounds", "each", "max"],
                        [[len(took), " ".join(f"{t:.1f}" for t in took), f"{max(took):.1f}"]])
        if "failover" in args.parts:
            took = failover(work / "failover", args.database_url, args.rounds)
            print("\nfailover to the backup after the primary's encoder stopped (s),"
                  " failover_after_s 2")
            print_table(["rounds", "each", "max"],
                        [[len(took), " ".join(f"{t:.1f}" for t in took), f"{max(took):.1f}"]])
        if "zap" in args.parts:
            took = zap(work / "zap", args.database_url, args.channels, args.zaps)
            print(f"\nchannel change to the first frame in hls.js through the edge (ms),"
                  f" {args.channels} channels, 2 s segments")
            print_table(["changes", "p50", "p90", "max"],
                        [[len(took), f"{percentile(took, 50):.0f}",
                          f"{percentile(took, 90):.0f}", f"{max(took):.0f}"]])
        if "capacity" in args.parts:
            print(f"\nchannels on one core (runner pinned to core 1), over"
                  f" {args.capacity_seconds:g} s, 2 s segments, 720p25 3 Mb/s feeds")
            print_table(["ladder", "channels", "runner + ffmpegs (one core)",
                         "runner alone", "per channel", "channels per core",
                         "real time kept (worst channel)"],
                        [capacity(work / "capacity-pass", args.database_url,
                                  args.passthrough_channels, "passthrough",
                                  args.capacity_seconds),
                         capacity(work / "capacity-ladder", args.database_url,
                                  args.ladder_channels, [720, 540, 432],
                                  args.capacity_seconds)])


if __name__ == "__main__":
    main()
