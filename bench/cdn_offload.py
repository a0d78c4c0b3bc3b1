"""CDN offload: simulated set-top boxes play one asset through nginx in front of the origin.

Each box fetches the master playlist, picks a variant (weighted, like a real
audience), fetches its playlist, init section and segments in order; most boxes
start within the ramp and fetch as fast as they can (a premiere), a few add
jitter between segments. nginx runs deploy/cdn/nginx.conf as the tests render
it; the origin is the real origin app on uvicorn over a local folder, with
every request counted where it arrives. Loopback only.

    .venv/bin/python bench/cdn_offload.py                 # 500 boxes
    .venv/bin/python bench/cdn_offload.py --boxes 2000 --waves 2

Prints, per kind of object: requests and bytes at the boxes and at the origin,
the most origin requests any one object got, and the offload ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    REPO,
    KeepAliveConnection,
    machine_facts,
    object_kind,
    print_table,
    warn_if_busy,
)
from prometheus_client import REGISTRY

# The CDN harness (template rendering, nginx in a folder, the counting origin)
# is the one the tests use: one way to run deploy/cdn/nginx.conf.
sys.path.insert(0, str(REPO))

from stb_origin.origin import build_app  # noqa: E402
from stb_origin.storage import LocalStorage  # noqa: E402
from tests.cdn.nginx import Nginx, nginx_binary  # noqa: E402
from tests.cdn.support import FakeAsset, OriginServer  # noqa: E402

ASSET_ID = "0ff10ad0" * 4
# Segment bytes per rendition: 4 s at about 145 kb/s, 500 kb/s and 1.5 Mb/s
# (times --scale), and how often boxes pick each.
RENDITIONS = {"234p": 72_000, "540p": 250_000, "1080p": 750_000}
WEIGHTS = {"234p": 0.3, "540p": 0.4, "1080p": 0.3}


class CountingStorage(LocalStorage):
    """Counts body reads per key: what the origin's in-memory copy saves."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: Counter[str] = Counter()

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        self.reads[key] += 1
        return super().read_chunks(key, start, end, chunk_size)


@dataclass
class Boxes:
    requests: Counter[str] = field(default_factory=Counter)  # path -> requests
    bytes: Counter[str] = field(default_factory=Counter)  # path -> body bytes received
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    finished: int = 0


async def play(host: str, port: int, asset: FakeAsset, boxes: Boxes, rng: random.Random,
               ramp_s: float, jitter: bool) -> None:
    await asyncio.sleep(rng.uniform(0, ramp_s))
    connection = KeepAliveConnection(host, port, host_header="cdn.example")

    async def get(path: str) -> bytes:
        started = time.perf_counter()
        status, body = await connection.get(path)
        boxes.latencies_s.append(time.perf_counter() - started)
        boxes.requests[path] += 1
        boxes.bytes[path] += len(body)
        if status != 200:
            boxes.errors[f"{status} {object_kind(path)}"] += 1
            raise LookupError(path)
        return body

    try:
        master = (await get(asset.url("master.m3u8"))).decode()
        variants = [line for line in master.splitlines() if line and not line.startswith("#")]
        rendition = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        variant = next(v for v in variants if f"/{rendition}/" in v)
        playlist = (await get(asset.url(variant))).decode()
        base = variant.rpartition("/")[0]
        names = ["init.mp4"] + [line for line in playlist.splitlines()
                                if line and not line.startswith("#")]
        for name in names:
            await get(asset.url(f"{base}/{name}"))
            if jitter:
                await asyncio.sleep(rng.uniform(0, 0.2))
        boxes.finished += 1
    except LookupError:
        pass
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        boxes.errors[type(exc).__name__] += 1
    finally:
        await connection.close()


async def run_wave(ports: list[int], asset: FakeAsset, boxes: Boxes, count: int,
                   ramp_s: float, jitter_share: float, deadline_s: float, seed: int) -> bool:
    rng = random.Random(seed)
    tasks = [asyncio.create_task(play("127.0.0.1", ports[n % len(ports)], asset, boxes,
                                      random.Random(rng.random()), ramp_s,
                                      n < count * jitter_share))
             for n in range(count)]
    try:
        async with asyncio.timeout(deadline_s):
            await asyncio.gather(*tasks)
    except TimeoutError:
        return False
    return True


def cache_lookups() -> dict[str, float]:
    return {result: REGISTRY.get_sample_value("stb_origin_cache_requests_total",
                                              {"result": result}) or 0.0
            for result in ("hit", "miss")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=500, help="boxes per wave")
    parser.add_argument("--waves", type=int, default=1,
                        help="waves one after the other (the later ones find a warm cache)")
    parser.add_argument("--segments", type=int, default=6, help="segments per rendition")
    parser.add_argument("--scale", type=float, default=0.1,
                        help="segment sizes times this: the Python clients, not nginx, are the"
                             " limit on 2 cores, and the ratios hardly depend on it")
    parser.add_argument("--ramp", type=float, default=2.0,
                        help="seconds over which a wave's boxes start")
    parser.add_argument("--jitter-share", type=float, default=0.1,
                        help="share of boxes that pause 0-200 ms between segments")
    parser.add_argument("--seconds", type=float, default=90.0,
                        help="bound on each wave: unfinished boxes are reported")
    parser.add_argument("--edges", type=int, default=1,
                        help="separate nginx caches (PoPs) sharing the boxes; with more than"
                             " one, the origin sees each object once per edge, and its own"
                             " single flight and in-memory copy are what stand before storage")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    try:
        nginx_binary()
    except FileNotFoundError as exc:
        sys.exit(str(exc))
    print(machine_facts())
    warn_if_busy()

    with tempfile.TemporaryDirectory(prefix="cdn-offload-") as tmp:
        folder = Path(tmp)
        storage = CountingStorage(folder / "storage")
        renditions = {name: int(size * args.scale) for name, size in RENDITIONS.items()}
        asset = FakeAsset(ASSET_ID, renditions, segments=args.segments).publish(storage)
        lookups_before = cache_lookups()
        boxes = Boxes()
        with contextlib.ExitStack() as stack:
            origin = stack.enter_context(OriginServer(build_app(storage)))
            edges = [stack.enter_context(Nginx(folder / f"nginx{n}", origin.upstream,
                                               workers=args.nginx_workers))
                     for n in range(args.edges)]
            started = time.monotonic()
            completed = True
            for wave in range(args.waves):
                completed &= asyncio.run(run_wave([edge.port for edge in edges], asset, boxes,
                                                  args.boxes, args.ramp, args.jitter_share,
                                                  args.seconds, args.seed + wave))
            elapsed = time.monotonic() - started
        lookups = {k: v - lookups_before[k] for k, v in cache_lookups().items()}

    at_origin = origin.log.per_path()
    origin_bytes: Counter[str] = Counter()
    for seen in origin.log.requests():
        origin_bytes[seen.path] += seen.body_bytes

    rows = []
    for name in ("master playlists", "media playlists", "init sections", "segments"):
        paths = [p for p in asset.files if object_kind(asset.url(p)) == name]
        urls = [asset.url(p) for p in paths]
        box_requests = sum(boxes.requests[u] for u in urls)
        box_bytes = sum(boxes.bytes[u] for u in urls)
        from_origin = sum(origin_bytes[u] for u in urls)
        reads = sum(storage.reads[f"hls/{ASSET_ID}/{p}"] for p in paths)
        rows.append([name, len(paths), box_requests, sum(at_origin[u] for u in urls),
                     max((at_origin[u] for u in urls), default=0), reads,
                     _mb(box_bytes), _mb(from_origin), _ratio(from_origin, box_bytes)])
    total_box_bytes = sum(boxes.bytes.values())
    total_origin_bytes = origin.log.body_bytes()
    total_box_requests = sum(boxes.requests.values())
    rows.append(["all", len(asset.files), total_box_requests, len(origin.log.requests()),
                 max(at_origin.values(), default=0), sum(storage.reads.values()),
                 _mb(total_box_bytes),
                 _mb(total_origin_bytes), _ratio(total_origin_bytes, total_box_bytes)])

    print(f"\n{args.waves} wave(s) of {args.boxes} boxes, {args.segments} segments a rendition,"
          f" segments of {', '.join(f'{k} {v / 1000:g} kB' for k, v in renditions.items())};"
          f" {args.edges} edge(s), nginx workers {args.nginx_workers}\n")
    print_table(["objects", "count", "box requests", "origin requests", "max per object",
                 "storage reads", "MB to boxes", "MB from origin", "byte offload"], rows)
    latencies = sorted(boxes.latencies_s)
    print(f"\nboxes finished: {boxes.finished} of {args.boxes * args.waves}"
          f"{'' if completed else ' (a wave hit --seconds)'}; errors: {dict(boxes.errors) or 0}")
    print(f"request offload {_ratio(len(origin.log.requests()), total_box_requests)},"
          f" byte offload {_ratio(total_origin_bytes, total_box_bytes)}")
    if latencies:
        print(f"box request latency (provisional, shared CPU): median"
              f" {1000 * statistics.median(latencies):.1f} ms, p99"
              f" {1000 * latencies[int(len(latencies) * 0.99) - 1]:.1f} ms;"
              f" {total_box_requests / elapsed:.0f} requests/s,"
              f" {total_box_bytes / elapsed / 1e6:.0f} MB/s over {elapsed:.1f} s")
    print(f"origin in-memory cache: {lookups['hit']:.0f} hits, {lookups['miss']:.0f} misses")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _ratio(from_origin: int, to_boxes: int) -> str:
    return f"{100 * (1 - from_origin / to_boxes):.2f}%" if to_boxes else "-"


if __name__ == "__main__":
    main()
