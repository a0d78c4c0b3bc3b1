"""Chunked transcoding: one worker on one core (one ffmpeg for the master) against
two workers on one core each (the master in spans, stb_origin.chunked).

Both runs take the same generated master (default: 10 minutes of 1080p30, 20 Mb/s
H.264 + stereo AAC, cached under bench/out/), a private redis-server, a fresh
STB_DATA_DIR (SQLite, local storage) and real `stb-origin worker` processes, each
pinned to its own core with taskset. The master is ingested in-process and the
clock runs from enqueue to `ready`. CPU is the worker trees' own and children's
time (work horses, ffmpeg), read from /proc before they stop.

    .venv/bin/python bench/chunked.py                  # 10 min 1080p, x264 ultrafast
    .venv/bin/python bench/chunked.py --minutes 2      # quick look

Goals (issue 10): time to ready at least 1.8x faster with two workers, and the
chunked path's CPU at most 10 % above the one-run path's. From the two points
it fits T(n) = S + P / n (S: the part no extra worker shortens: download,
probe, audio, stitching, packaging, publishing; P: the video encode) and
prints what that predicts for 8 and 32 workers, bounded by the number of spans.

Needs: redis-server, ffmpeg, taskset (util-linux); a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import machine_facts, print_table, process_tree_cpu_s, source_clip, warn_if_busy
from servers import REPO, Process, require, start_redis, stb_env

sys.path.insert(0, str(REPO))

from stb_origin import migrations  # noqa: E402
from stb_origin.assets.records import Asset  # noqa: E402
from stb_origin.ingest.service import accept_source  # noqa: E402
from stb_origin.services import build_services  # noqa: E402
from stb_origin.settings import Settings  # noqa: E402

CLI = [sys.executable, "-m", "stb_origin.cli"]


@dataclass
class Result:
    what: str
    workers: int
    seconds: float
    cpu_s: float
    spans: int
    stages: dict[str, float]  # pipeline stage -> seconds (the holder's run)


def run(what: str, master: Path, work: Path, cores: list[int], chunk_above_s: float,
        preset: str, span_seconds: float) -> Result:
    taskset = require("taskset", "apt-get install -y util-linux")
    redis, redis_url = start_redis(work / "redis", cpu=cores[0])
    # The H.264 ladder: the comparison is of the paths, not the codecs (HEVC's
    # cost is bench/codec_cost.py's); x265 would make a full run hours long here.
    settings = Settings(data_dir=work / "data", redis_url=redis_url, x264_preset=preset,
                        chunk_above_s=chunk_above_s, span_seconds=span_seconds,
                        reconcile_interval_s=0, hevc=False)
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    workers = [Process(f"worker-{n}", [taskset, "-c", str(core), *CLI, "worker"],
                       work / "logs", env=stb_env(settings.to_env()), cwd=REPO)
               for n, core in enumerate(cores)]
    try:
        time.sleep(2)  # the workers register with the queue
        started = time.monotonic()
        asset_id = str(accept_source(services, master, master.suffix, what,
                                     master.stat().st_size)["id"])
        while True:
            with services.db.session() as session:
                asset = session.get(Asset, asset_id)
                assert asset is not None
                status = asset.status
            if status in ("ready", "failed"):
                break
            for worker in workers:
                if worker.popen.poll() is not None:
                    raise SystemExit(f"{worker.name} exited; see {worker.log}")
            time.sleep(0.5)
        seconds = time.monotonic() - started
        if status != "ready":
            raise SystemExit(f"{what}: the asset failed: {asset.error_code} {asset.error_message}")
        time.sleep(1)  # helper jobs of the finished run end at once; let them be waited for
        cpu = sum(process_tree_cpu_s(w.pid) for w in workers)
        encoded = services.redis.hgetall("stb:metrics:stb_spans_encoded_total")
        spans = sum(int(v) for v in encoded.values())
        stages = stage_seconds(services.redis.hgetall(
            "stb:metrics:stb_pipeline_stage_duration_seconds"))
    finally:
        for worker in workers:
            worker.stop()
        services.close()
        redis.stop()
    return Result(what, len(cores), seconds, cpu, spans, stages)


def stage_seconds(stored: dict[bytes, bytes]) -> dict[str, float]:
    """Seconds per stage from the shared histogram's sums (fields '["stage"]|sum')."""
    found = {}
    for field, value in stored.items():
        labels, _, part = field.decode().rpartition("|")
        if part == "sum":
            found[json.loads(labels)[0]] = float(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="master length")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--preset", default="ultrafast", help="x264 preset of the ladder")
    parser.add_argument("--span-seconds", type=float, default=Settings.span_seconds)
    args = parser.parse_args()

    print(machine_facts())
    warn_if_busy()
    master = source_clip(args.minutes * 60, args.size, 30)
    with tempfile.TemporaryDirectory(prefix="stb-chunked-") as tmp:
        one = run("one run, 1 worker", master, Path(tmp) / "one", [0], 0,
                  args.preset, args.span_seconds)
        spans = run("spans, 2 workers", master, Path(tmp) / "two", [0, 1], 1,
                    args.preset, args.span_seconds)

    print(f"\n{args.minutes:g} min {args.size} master, x264 {args.preset},"
          f" spans of {args.span_seconds:g} s")
    print_table(["path", "workers", "time to ready (s)", "CPU (s)", "spans encoded"],
                [[r.what, r.workers, f"{r.seconds:.1f}", f"{r.cpu_s:.1f}", r.spans]
                 for r in (one, spans)])
    names = list(dict.fromkeys([*one.stages, *spans.stages]))
    print("\nstages (s):")
    print_table(["path", *names],
                [[r.what, *(f"{r.stages.get(n, 0):.1f}" for n in names)] for r in (one, spans)])
    speedup = one.seconds / spans.seconds
    overhead = spans.cpu_s / one.cpu_s - 1
    print(f"\nspeed-up {speedup:.2f}x (goal >= 1.8x): {'met' if speedup >= 1.8 else 'NOT met'}")
    print(f"CPU overhead of chunking {100 * overhead:+.1f} % (goal <= 10 %):"
          f" {'met' if overhead <= 0.10 else 'NOT met'}")
    # T(n) = S + P / n through the two points.
    parallel = 2 * (one.seconds - spans.seconds)
    serial = max(0.0, one.seconds - parallel)
    for n in (8, 32):
        busy = min(n, spans.spans)
        rounds = math.ceil(spans.spans / busy)
        predicted = serial + parallel * rounds / spans.spans
        print(f"predicted for {n} workers: {predicted:.0f} s"
              f" ({one.seconds / predicted:.1f}x; {spans.spans} spans, so {busy} busy)")


if __name__ == "__main__":
    main()
