"""Upload-to-ready through the real system next to the bare ffmpeg run of the same ladder.

Starts what production runs, as processes: a private redis-server on a free port
(or STB_REDIS_URL, with a queue of its own), `stb-origin serve` and
`stb-origin worker`, all on a temporary STB_DATA_DIR. Each round uploads the
master over HTTP with a token from `stb-origin token` and polls the asset until
it is ready; and, in alternating order, runs alone the exact ffmpeg argv the
pipeline builds for that source (probe -> plan_ladder -> build_argv, through
proc.run as transcode does). The pipeline's own overhead is
(upload-to-ready - bare ffmpeg) / bare ffmpeg. "Ready" is the time the worker
logs it, to the millisecond, not when the next status poll sees it. The CPU
seconds of the whole system for the job (server, worker with its work horse and
tools, Redis) next to those of the bare run give the same comparison in a form
that other work on the machine hardly disturbs.

The worker logs only when RQ starts the job and when the asset is ready, so
the stages in between are watched from outside, every --poll seconds: the
ffprobe/ffmpeg processes that name the job's work dir (/proc), the work dir's
packaged/ folder and master playlist, and the published master in local
storage. Those stage boundaries are known to about one poll interval.

    .venv/bin/python bench/pipeline_overhead.py                    # 30 s 1080p30, 3 rounds
    .venv/bin/python bench/pipeline_overhead.py --seconds 5 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from common import (
    OUT,
    OtherCpu,
    add_source_arguments,
    children_cpu_s,
    machine_facts,
    median,
    print_table,
    process_tree_cpu_s,
    source_clip,
    warn_if_busy,
)
from servers import free_port, start_redis

from stb_origin import proc
from stb_origin.settings import Settings, from_env
from stb_origin.transcode import build_argv, plan_ladder, probe

CLI = [sys.executable, "-m", "stb_origin.cli"]
START_TIMEOUT_S = 30
STATUS_POLL_S = 0.5


class System:
    """redis-server (unless given), `stb-origin serve` and `stb-origin worker`."""

    def __init__(self, data_dir: Path, redis_url: str | None) -> None:
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis_url = redis_url
        env = {**os.environ, "STB_DATA_DIR": str(data_dir)}
        if redis_url:
            # A shared Redis may have other workers on the default queue.
            env["STB_QUEUE_NAME"] = f"bench-{secrets.token_hex(4)}"
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> System:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            redis, self.redis_url = start_redis(self.data_dir)
            self.processes["redis"] = redis.popen  # first in, so stopped last
        self.env["STB_REDIS_URL"] = self.redis_url
        self._spawn("serve", *CLI, "serve", "--port", str(self.port))
        self._spawn("worker", *CLI, "worker")
        self._wait(self._http_ready, "stb-origin serve")
        return self

    @property
    def settings(self) -> Settings:
        return from_env(self.env)

    def _spawn(self, name: str, *argv: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log,
                                                    stdin=subprocess.DEVNULL)

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start; logs in {self.logs}")
            time.sleep(0.1)

    def _http_ready(self) -> bool:
        try:
            return httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited; logs in {self.logs}")

    def cpu_s(self) -> float:
        return sum(process_tree_cpu_s(p.pid) for p in self.processes.values())

    def token(self, scopes: str) -> str:
        done = subprocess.run([*CLI, "token", "--scope", scopes], env=self.env,
                              capture_output=True, text=True, check=True, timeout=30)
        return done.stdout.strip()

    def stop(self) -> None:
        # Worker and server first, Redis last: the worker says goodbye to Redis.
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Tool:
    """An ffprobe or ffmpeg process of the worker, as seen from outside."""

    program: str
    argv: list[str]
    parent: int  # for ffmpeg, the RQ work horse running the job
    started: float
    ended: float | None = None


@dataclass
class Watch:
    """When each stage of one job was first seen (time.time()), from outside the worker."""

    work_root: Path
    storage_root: Path | None
    asset_id: str = ""
    poll: float = 0.05
    events: dict[str, float] = field(default_factory=dict)
    tools: dict[int, Tool] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _seen_pids: set[int] = field(default_factory=set)

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _mark(self, name: str, now: float) -> None:
        self.events.setdefault(name, now)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            self._scan_processes(now)
            if self.asset_id:
                work = next(self.work_root.glob(f"{self.asset_id}-*"), None)
                if work is not None:
                    self._mark("work dir", now)
                    for name in ("packaged", "packaged/master.m3u8"):
                        if (work / name).exists():
                            self._mark(name, now)
                if self.storage_root is not None and (
                        self.storage_root / "hls" / self.asset_id / "master.m3u8").exists():
                    self._mark("published", now)
            self._stop.wait(self.poll)

    def _scan_processes(self, now: float) -> None:
        for pid, tool in self.tools.items():
            if tool.ended is None and not _alive(pid):
                tool.ended = now
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self._seen_pids:
                continue
            pid = int(name)
            self._seen_pids.add(pid)
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            except OSError:
                continue
            program = Path(argv[0].decode()).name if argv else ""
            cmdline = [a.decode(errors="replace") for a in argv]
            if program in ("ffmpeg", "ffprobe") and any(str(self.work_root) in a
                                                        for a in cmdline):
                self.tools[pid] = Tool(program, cmdline, _parent(pid), now)

    def first(self, program: str) -> Tool | None:
        found = [tool for tool in self.tools.values() if tool.program == program]
        return min(found, key=lambda tool: tool.started) if found else None


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class PipelineRun:
    total: float
    stages: dict[str, float]
    ffmpeg_argv: list[str]
    work_dir: str  # the job's folder under STB_DATA_DIR/work
    cpu: float  # CPU seconds of server, worker (and its children) and Redis for the job


def run_pipeline(system: System, source_path: Path, token: str, poll: float,
                 timeout: float) -> PipelineRun:
    settings = system.settings
    storage = urlsplit(settings.resolved_storage_url)
    storage_root = Path(unquote(storage.path)) if storage.scheme == "file" else None
    watch = Watch(settings.work_dir.resolve(), storage_root, poll=poll).start()
    headers = {"Authorization": f"Bearer {token}"}
    cpu_before = system.cpu_s()
    try:
        start = time.time()
        with source_path.open("rb") as f:
            response = httpx.post(system.base_url + "/v1/assets", headers=headers,
                                  files={"file": (source_path.name, f, "video/mp4")},
                                  data={"title": "bench"}, timeout=600)
        accepted = time.time()
        if response.status_code != 202:
            raise SystemExit(f"upload answered {response.status_code}: {response.text}")
        asset_id = response.json()["id"]
        watch.asset_id = asset_id
        deadline = time.monotonic() + timeout
        while True:
            system.check_alive()
            asset = httpx.get(f"{system.base_url}/v1/assets/{asset_id}", headers=headers,
                              timeout=10).json()
            seen_ready = time.time()
            if asset["status"] == "ready":
                break
            if asset["status"] == "failed" or time.monotonic() > deadline:
                raise SystemExit(f"asset {asset_id} ended {asset['status']}: {asset['error']};"
                                 f" logs in {system.logs}")
            # Seldom: the worker's log says when it was ready, to the millisecond.
            time.sleep(STATUS_POLL_S)
    finally:
        watch.stop()

    logged = worker_log_times(system.logs / "worker.log", asset_id)
    job_started = logged.get("job started", accepted)
    ready = logged.get("ready", seen_ready)
    ffprobe, ffmpeg = watch.first("ffprobe"), watch.first("ffmpeg")
    if ffprobe is None or ffmpeg is None or ffmpeg.ended is None:
        raise SystemExit("did not see the worker's ffprobe/ffmpeg; try a smaller --poll")
    ev = watch.events
    # A stage too short to be seen between two polls counts as zero.
    packaging = ev.get("packaged", ffmpeg.ended)
    packaged = ev.get("packaged/master.m3u8", packaging)
    published = ev.get("published", packaged)
    marks = [
        ("upload (HTTP POST until 202)", start, accepted),
        ("queue wait (202 until RQ starts the job)", accepted, job_started),
        ("job start, source download", job_started, ffprobe.started),
        ("probe (ffprobe) and ladder plan", ffprobe.started, ffmpeg.started),
        ("transcode (the ffmpeg process)", ffmpeg.started, ffmpeg.ended),
        ("layout fix-ups, keys stored", ffmpeg.ended, packaging),
        ("package + encrypt", packaging, packaged),
        ("publish to storage", packaged, published),
        ("mark ready, prune old versions", published, ready),
    ]
    stages = {name: max(0.0, end - begin) for name, begin, end in marks}
    # The horse's CPU (ffmpeg's included) reaches the worker's once the worker reaps it.
    deadline = time.monotonic() + 30
    while Path(f"/proc/{ffmpeg.parent}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu = system.cpu_s() - cpu_before
    work = re.compile(re.escape(str(settings.work_dir.resolve())) + r"/[^/]+")
    work_dir = next((m.group(0) for a in ffmpeg.argv if (m := work.search(a))), "")
    return PipelineRun(ready - start, stages, ffmpeg.argv, work_dir, cpu)


def worker_log_times(log: Path, asset_id: str) -> dict[str, float]:
    """When RQ started the asset's job and when the pipeline logged it ready (time.time())."""
    times: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        when = datetime.fromisoformat(entry["ts"]).timestamp()
        if entry.get("msg") == "asset ready" and entry.get("asset_id") == asset_id:
            times["ready"] = when
        elif (entry.get("logger") == "rq.worker"
              and f"process_asset('{asset_id}')" in entry.get("msg", "")):
            times.setdefault("job started", when)
    return times


def bare_ffmpeg_argv(source_path: Path, settings: Settings, out_dir: Path) -> list[str]:
    source = probe(source_path, settings)
    return build_argv(source_path, source, plan_ladder(source, settings), out_dir, settings)


def run_bare(argv: list[str], out_dir: Path, timeout: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the ffmpeg run."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    cpu_before = children_cpu_s()
    start = time.perf_counter()
    proc.run(argv, timeout=timeout)
    elapsed = time.perf_counter() - start
    cpu = children_cpu_s() - cpu_before
    shutil.rmtree(out_dir, ignore_errors=True)
    return elapsed, cpu



def same_argv(pipeline: list[str], bare: list[str], pipeline_work: str, source: Path,
              bare_out: Path) -> bool:
    """The pipeline's ffmpeg argv is ours once its work paths are swapped for ours."""
    if not pipeline_work:
        return False
    swapped = [a.replace(f"{pipeline_work}/source{source.suffix}", str(source.absolute()))
                .replace(f"{pipeline_work}/encoded", str(bare_out.absolute()))
               for a in pipeline]
    return swapped == bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, seconds=30)
    parser.add_argument("--redis-url", default=os.environ.get("STB_REDIS_URL") or None,
                        help="use this Redis (default: STB_REDIS_URL, else a private one)")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="how often the work dir and processes are looked at (seconds)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and its logs")
    args = parser.parse_args()

    source_path = source_clip(args.seconds, args.size, args.fps)
    print(machine_facts())
    warn_if_busy()
    data_dir = Path(tempfile.mkdtemp(prefix="stb-pipeline-bench-")).resolve()
    system = System(data_dir, args.redis_url)
    bare_out = OUT / "pipeline_overhead" / "encoded"
    other_cpu = OtherCpu()
    try:
        system.start()
        settings = system.settings
        argv = bare_ffmpeg_argv(source_path, settings, bare_out)
        timeout = 600 + 60 * args.seconds
        token = system.token("assets:write assets:read")
        print(f"source: {source_path.name} ({source_path.stat().st_size / 1e6:.0f} MB);"
              f" x264 preset {settings.x264_preset}, {settings.segment_format} segments;"
              f" storage {settings.resolved_storage_url};"
              f" redis {'given' if args.redis_url else 'private'}")

        bare: list[float] = []
        bare_cpu: list[float] = []
        runs: list[PipelineRun] = []
        for round_ in range(args.repeat):
            for what in (("bare", "pipeline") if round_ % 2 == 0 else ("pipeline", "bare")):
                if what == "bare":
                    wall, cpu = run_bare(argv, bare_out, timeout)
                    bare.append(wall)
                    bare_cpu.append(cpu)
                    print(f"  round {round_ + 1}: bare ffmpeg {wall:.1f} s ({cpu:.1f} s CPU)",
                          flush=True)
                else:
                    runs.append(run_pipeline(system, source_path, token, args.poll, timeout))
                    print(f"  round {round_ + 1}: upload to ready {runs[-1].total:.1f} s"
                          f" ({runs[-1].cpu:.1f} s CPU)", flush=True)

        total, bare_s = median([r.total for r in runs]), median(bare)
        rows: list[list[object]] = []
        for name in runs[0].stages:
            seconds = median([r.stages[name] for r in runs])
            rows.append([name, seconds, f"{100 * seconds / bare_s:.1f}%"])
        rows.append(["upload to ready (measured)", total, f"{100 * total / bare_s:.1f}%"])
        rows.append(["bare ffmpeg, same argv, alone", bare_s, "100.0%"])
        print()
        print_table(["stage (medians)", "seconds", "of bare ffmpeg"], rows)
        identical = all(same_argv(r.ffmpeg_argv, argv, r.work_dir, source_path, bare_out)
                        for r in runs)
        transcode = median([r.stages["transcode (the ffmpeg process)"] for r in runs])
        print(f"\npipeline's ffmpeg argv = the bare argv (work paths swapped):"
              f" {'yes' if identical else 'NO'}")
        print(f"ffmpeg inside the pipeline vs alone: {transcode / bare_s:.3f}x")
        print(f"overhead = (upload to ready - bare ffmpeg) / bare ffmpeg ="
              f" {100 * (total - bare_s) / bare_s:.1f}% (aim: under 10%; medians of {args.repeat})")
        # CPU seconds hardly move when other work shares the machine; wall time does.
        cpu, cpu_bare = median([r.cpu for r in runs]), median(bare_cpu)
        print(f"CPU seconds: whole system for the job {cpu:.1f}, bare ffmpeg {cpu_bare:.1f};"
              f" CPU overhead {100 * (cpu - cpu_bare) / cpu_bare:.1f}%")
        print(other_cpu.report(sum(process_tree_cpu_s(p.pid)
                                   for p in system.processes.values())))
    finally:
        system.stop()
        if args.keep:
            print(f"data dir and logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(bare_out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
