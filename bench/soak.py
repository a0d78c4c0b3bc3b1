"""Soak: boxes play through the CDN while uploads keep coming and workers are killed with -9.

Starts, as processes on a temporary STB_DATA_DIR: a private redis-server with
append-only persistence, `stb-origin serve --server granian` (its reconciler
enqueues lost or due jobs and retries runs whose lease lapsed), two
`stb-origin worker`, and the real nginx CDN (deploy/cdn/nginx.conf, rendered by
the tests' harness) in front of the origin. Settings are the defaults (lease
60 s, reconciler every 10 s, back-off 15 s before attempt 2), except that the
boxes' account may hold as many boxes as the run has.

Then: a few short generated clips are uploaded over HTTP (POST /v1/assets,
operator token from `stb-origin token`) into package "soak"; subscriber
accounts of five boxes each are entitled to it, and every box has a device and
a device token of its own (stb_origin.accounts, as bench/key_delivery.py), so
the key path is the production one: signature, user and device, entitlement,
per-device rate limit, audit row. Once the clips are ready, --boxes simulated
boxes loop until the end: master and media playlist through the CDN, init
section and segments through the CDN, keys from the origin's /keys with the
box's token, and every init section and segment decrypted (AES-128-CBC, the
key and IV the playlist names) and checked to be MP4 inside. Any HTTP error,
decrypt error or time-out is a playback error. Meanwhile a clip is uploaded
every --upload-every seconds, and every --kill-every seconds one worker is
killed with SIGKILL, with its whole process tree (work horse, ffmpeg), while
it transcodes, and a new worker replaces it. The first worker is never killed:
it is the one whose memory is followed over the whole run.

At the end: the uploads are waited for, and the report gives playback errors,
the boxes' requests and bytes, uploads ready/failed, the check that each asset
was published by one run only, the time from each kill to its job's retry
(the asset's fencing token `assets.run` going up: a new run claimed it), RSS of
the server and the workers, and whether anything was left running. The exit
status is 1 when a goal is missed.

    .venv/bin/python bench/soak.py                                    # 10 minutes, 200 boxes
    .venv/bin/python bench/soak.py --minutes 2 --boxes 50 --kill-every 40   # quick

Needs: redis-server, ffmpeg, nginx with the njs module
(apt-get install -y redis-server ffmpeg nginx libnginx-mod-http-js), granian
in the project's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from common import (
    KeepAliveConnection,
    OtherCpu,
    machine_facts,
    object_kind,
    print_table,
    process_tree_cpu_s,
    warn_if_busy,
)
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from servers import REPO, Process, free_port, require, wait_http

sys.path.insert(0, str(REPO))

from stb_origin import migrations  # noqa: E402
from stb_origin.accounts import devices, entitlements, packages, users  # noqa: E402
from stb_origin.accounts.devices import Capabilities  # noqa: E402
from stb_origin.assets.records import Asset  # noqa: E402
from stb_origin.services import Services, build_services  # noqa: E402
from stb_origin.settings import Settings  # noqa: E402
from tests.cdn.nginx import Nginx, js_module, nginx_binary  # noqa: E402

CLI = [sys.executable, "-m", "stb_origin.cli"]
PACKAGE = "soak"
BOXES_PER_ACCOUNT = 5
# Short clips, so that a transcode takes seconds: (size, seconds).
CLIPS = (("640x360", 6), ("854x480", 6), ("426x240", 4), ("640x360", 8))
FIRST_CLIPS = 3
REQUEST_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 600.0
RSS_SAMPLE_S = 5.0
GOAL_RETRY_P99_S = 120.0
GOAL_RSS_GROWTH = 0.05
# MP4 boxes an init section / a media segment may start with once decrypted.
INIT_BOXES = {b"ftyp"}
SEGMENT_BOXES = {b"styp", b"moof", b"sidx", b"prft", b"emsg"}


# --- processes -------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    """Every live process below pid, from /proc/PID/task/*/children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            todo.extend(children)
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> int:
    return sum(rss_kib(p) for p in [pid, *descendants(pid)])


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace")
                for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def start_redis_aof(work: Path) -> tuple[Process, str]:
    """redis-server with append-only persistence, as dev, compose and Kubernetes run it."""
    exe = require("redis-server", "apt-get install -y redis-server")
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    process = Process("redis", [exe, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "yes",
                                "--appendfsync", "everysec", "--dir", str(work)], work)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    process.stop()
    raise RuntimeError("redis-server did not start")


@dataclass
class Worker:
    name: str
    process: Process
    started: float
    killable: bool
    killed: bool = False
    # (monotonic time, tree RSS KiB) while it had no child: no job running.
    idle_rss: list[tuple[float, int]] = field(default_factory=list)


class System:
    """Everything the soak starts, and stops again (also on Ctrl-C)."""

    def __init__(self, data_dir: Path, settings_env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("STB_")},
                    **settings_env, "PYTHONPATH": str(REPO)}
        self.redis: Process | None = None
        self.server: Process | None = None
        self.nginx: Nginx | None = None
        self.workers: list[Worker] = []
        self.lock = threading.Lock()

    def start_server(self, port: int) -> None:
        self.server = Process("server", [*CLI, "serve", "--server", "granian",
                                         "--host", "127.0.0.1", "--port", str(port)],
                              self.logs, env=self.env, cwd=REPO)
        wait_http(f"http://127.0.0.1:{port}/healthz", self.server.popen, log=self.server.log)

    def start_worker(self, killable: bool) -> Worker:
        with self.lock:
            name = f"worker-{len(self.workers) + 1}"
            worker = Worker(name, Process(name, [*CLI, "worker"], self.logs, env=self.env,
                                          cwd=REPO), time.monotonic(), killable)
            self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Worker]:
        with self.lock:
            return [w for w in self.workers if not w.killed]

    def stop(self) -> None:
        for worker in self.workers:
            stop_tree(worker.process)
        if self.server is not None:
            self.server.stop()
        if self.nginx is not None:
            self.nginx.stop()
        if self.redis is not None:
            self.redis.stop()

    def left_behind(self) -> list[str]:
        """Processes still running that name the run's folder (argv or environment)."""
        needle = str(self.data_dir.parent).encode()  # the run's temporary folder
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                names = needle in (entry / "cmdline").read_bytes() or needle in (
                    entry / "environ").read_bytes()
            except OSError:
                continue
            if names and alive(int(entry.name)):
                found.append(f"{entry.name} {comm(int(entry.name))}")
        return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL pid and everything below it; the pids signalled. The tree is frozen
    first (SIGSTOP), so nothing forks or exits between listing and killing."""
    tree = [pid, *descendants(pid)]
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGSTOP)
    tree = [pid, *descendants(pid)]
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    return tree


def stop_tree(process: Process, timeout: float = 20) -> None:
    """SIGTERM (warm shutdown), then SIGKILL whatever of the tree is left: a work
    horse runs in a session of its own, out of reach of the group signal."""
    if process.popen.poll() is None:
        process.popen.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=timeout)
    if process.popen.poll() is None:
        kill_tree(process.pid)
    process.stop(timeout=5)


# --- set-up -------------------------------------------------------------------------------

def make_clips(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for n, (size, seconds) in enumerate(CLIPS):
        path = folder / f"clip-{n}-{size}-{seconds}s.mp4"
        subprocess.run([
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency={440 + 110 * n}:sample_rate=48000"
                                 f":duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-ac", "2", "-movflags", "+faststart", str(path),
        ], check=True, timeout=120)
        clips.append(path)
    return clips


def set_up_boxes(services: Services, boxes: int, ttl_s: int) -> list[str]:
    """Package "soak", accounts of BOXES_PER_ACCOUNT boxes entitled to it; a device
    token per box."""
    tokens = []
    with services.db.session() as session:
        packages.create_package(session, PACKAGE, "Soak")
        registered = []
        for n in range(boxes):
            if n % BOXES_PER_ACCOUNT == 0:
                user = users.create_user(session, f"soak-{n // BOXES_PER_ACCOUNT}@example.com")
                entitlements.grant(session, user.account_id, PACKAGE,
                                   valid_from=datetime.now(UTC) - timedelta(days=1))
            device = devices.register_device(session, user.account_id, f"SN-SOAK-{n}",
                                             f"box {n}", Capabilities(max_height=1080),
                                             max_devices=BOXES_PER_ACCOUNT)
            registered.append((user.id, device.id))
    for user_id, device_id in registered:
        tokens.append(services.signer.issue(["playback"], subject=user_id, device_id=device_id,
                                            ttl_s=ttl_s))
    return tokens


def imported_from(env: dict[str, str]) -> Path:
    found = subprocess.run([sys.executable, "-c", "import stb_origin; print(stb_origin.__file__)"],
                           env=env, cwd=REPO, check=True, capture_output=True,
                           text=True).stdout.strip()
    return Path(found).resolve().parent.parent


# --- boxes ---------------------------------------------------------------------------------

@dataclass
class Fleet:
    requests: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    playbacks: int = 0
    segments_decrypted: int = 0

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        if len(self.error_examples) < 10:
            self.error_examples.append(f"{what}: {detail}")


class PlaybackError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass
class Segment:
    uri: str
    key_uri: str
    iv: bytes
    init: bool


def media_segments(playlist: str, base: str) -> list[Segment]:
    """Init section and segments of a media playlist, each with its key URI and IV."""
    out: list[Segment] = []
    key_uri, iv_hex, sequence = "", "", 0
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-KEY:"):
            attrs = _attributes(line.split(":", 1)[1])
            if attrs.get("METHOD") != "AES-128":
                raise PlaybackError("playlist", f"key method {attrs.get('METHOD')}")
            key_uri, iv_hex = attrs["URI"], attrs.get("IV", "")
        elif line.startswith("#EXT-X-MAP:"):
            if not key_uri:
                raise PlaybackError("playlist", "clear init section")
            out.append(Segment(urljoin(base, _attributes(line.split(":", 1)[1])["URI"]),
                               key_uri, bytes.fromhex(iv_hex.removeprefix("0x")), init=True))
        elif line and not line.startswith("#"):
            if not key_uri:
                raise PlaybackError("playlist", "clear segment")
            iv = (bytes.fromhex(iv_hex.removeprefix("0x")) if iv_hex
                  else sequence.to_bytes(16, "big"))
            out.append(Segment(urljoin(base, line), key_uri, iv, init=False))
            sequence += 1
    return out


def _attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    rest = text
    while rest:
        name, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
            rest = rest.removeprefix(",")
        else:
            value, _, rest = rest.partition(",")
        attrs[name.strip()] = value
    return attrs


def decrypt(body: bytes, key: bytes, iv: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


async def box(n: int, token: str, cdn: tuple[str, int], origin: tuple[str, int],
              playable: list[str], fleet: Fleet, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed * 100_003 + n)
    edge, keys = KeepAliveConnection(*cdn), KeepAliveConnection(*origin)
    auth = {"Authorization": f"Bearer {token}"}

    async def get(conn: KeepAliveConnection, path: str,
                  headers: dict[str, str] | None = None) -> bytes:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status, body = await conn.get(path, headers)
        except TimeoutError:
            await conn.close()
            raise PlaybackError(f"timeout {object_kind(path)}", path) from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await conn.close()
            raise PlaybackError(f"{type(exc).__name__} {object_kind(path)}", path) from exc
        fleet.requests[object_kind(path)] += 1
        fleet.bytes[object_kind(path)] += len(body)
        if status != 200:
            raise PlaybackError(f"HTTP {status} {object_kind(path)}", f"{path}: {body[:200]!r}")
        return body

    async def play(asset_id: str) -> None:
        master_path = f"/hls/{asset_id}/master.m3u8"
        master = (await get(edge, master_path)).decode()
        variants = [line for line in master.splitlines() if line and not line.startswith("#")]
        if not variants:
            raise PlaybackError("playlist", f"no variant in {master_path}")
        variant = urljoin(master_path, rng.choice(variants))
        segments = media_segments((await get(edge, variant)).decode(), variant)
        if not any(not s.init for s in segments):
            raise PlaybackError("playlist", f"no segment in {variant}")
        key_cache: dict[str, bytes] = {}
        for segment in segments:
            body = await get(edge, segment.uri)
            key_path = urlsplit(segment.key_uri).path
            if key_path not in key_cache:
                key_cache[key_path] = await get(keys, key_path, auth)
            try:
                clear = decrypt(body, key_cache[key_path], segment.iv)
            except ValueError as exc:
                raise PlaybackError("decrypt", f"{segment.uri}: {exc}") from None
            expected = INIT_BOXES if segment.init else SEGMENT_BOXES
            if clear[4:8] not in expected:
                raise PlaybackError("decrypt", f"{segment.uri}: starts {clear[:8]!r}")
            fleet.segments_decrypted += 1

    await asyncio.sleep(rng.uniform(0, 10))  # the boxes come in over 10 s
    try:
        while not stop.is_set():
            try:
                await play(rng.choice(playable))
                fleet.playbacks += 1
            except PlaybackError as exc:
                fleet.error(exc.kind, str(exc))
            # A viewer between titles; also keeps each box well under the
            # per-device key rate limit.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(2, 5))
    finally:
        await edge.close()
        await keys.close()


# --- uploads, kills, the run --------------------------------------------------------------

@dataclass
class Kill:
    worker: str
    asset_id: str
    run: int
    at: float
    while_transcoding: bool
    pids: int
    survivors: int = 0
    retried_after_s: float | None = None


class Soak:
    def __init__(self, args: argparse.Namespace, system: System, services: Services,
                 api: str, upload_token: str, clips: list[Path]) -> None:
        self.args = args
        self.system = system
        self.services = services
        self.api = api
        self.upload_token = upload_token
        self.clips = clips
        self.rng = random.Random(args.seed)
        self.uploaded: list[str] = []
        self.upload_errors: Counter[str] = Counter()
        self.kills: list[Kill] = []
        self.work_dir = services.settings.work_dir.resolve()

    async def upload(self, client: httpx.AsyncClient) -> str | None:
        clip = self.rng.choice(self.clips)
        try:
            with open(clip, "rb") as body:
                response = await client.post(
                    f"{self.api}/v1/assets", files={"file": (clip.name, body, "video/mp4")},
                    data={"title": f"soak {len(self.uploaded) + 1}", "packages": PACKAGE},
                    headers={"Authorization": f"Bearer {self.upload_token}"}, timeout=60)
        except httpx.HTTPError as exc:
            self.upload_errors[type(exc).__name__] += 1
            return None
        if response.status_code != 202:
            self.upload_errors[f"HTTP {response.status_code}"] += 1
            return None
        asset_id = str(response.json()["id"])
        self.uploaded.append(asset_id)
        return asset_id

    def statuses(self) -> dict[str, Asset]:
        with self.services.db.session() as session:
            rows = session.query(Asset).filter(Asset.id.in_(self.uploaded)).all()
            session.expunge_all()
            return {row.id: row for row in rows}

    async def wait_settled(self, ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = await asyncio.to_thread(self.statuses)
            if all(rows.get(i) is not None and rows[i].status in ("ready", "failed")
                   for i in ids):
                return True
            await asyncio.sleep(1)
        return False

    async def uploader(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(*self.args.upload_every))
            if not stop.is_set():
                await self.upload(client)

    async def watch_ready(self, playable: list[str], stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await asyncio.to_thread(self.statuses)
            for asset_id, row in rows.items():
                if row.status == "ready" and asset_id not in playable:
                    playable.append(asset_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2)

    def transcoding(self, worker: Worker) -> str | None:
        """The asset whose ffmpeg runs under this worker, if one does."""
        for pid in descendants(worker.process.pid):
            if comm(pid) != "ffmpeg":
                continue
            for arg in cmdline(pid):
                if arg.startswith(str(self.work_dir) + "/"):
                    return arg[len(str(self.work_dir)) + 1:].split("/")[0].partition("-")[0]
        return None

    async def killer(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.args.kill_every)
            if stop.is_set():
                return
            await self.kill_one(client)

    async def kill_one(self, client: httpx.AsyncClient) -> None:
        target = next(w for w in self.system.live_workers() if w.killable)
        # Wait for it to transcode; if it idles, give it something to do.
        deadline = time.monotonic() + 90
        nudged = time.monotonic()
        asset_id = None
        while time.monotonic() < deadline:
            asset_id = await asyncio.to_thread(self.transcoding, target)
            if asset_id:
                break
            if time.monotonic() - nudged > 8:
                await self.upload(client)
                nudged = time.monotonic()
            await asyncio.sleep(0.1)
        run = 0
        if asset_id:
            with self.services.db.session() as session:
                row = session.get(Asset, asset_id)
                run = row.run if row is not None else 0
        at = time.monotonic()
        pids = kill_tree(target.process.pid)
        target.killed = True
        target.process.popen.wait()
        await asyncio.sleep(1)
        survivors = sum(alive(p) for p in pids)
        kill = Kill(target.name, asset_id or "", run, at, bool(asset_id), len(pids), survivors)
        self.kills.append(kill)
        print(f"  {time.strftime('%H:%M:%S')} killed {target.name} ({len(pids)} processes"
              f"{', transcoding ' + asset_id[:8] + ' run ' + str(run) if asset_id else ', idle'})",
              flush=True)
        self.system.start_worker(killable=True)
        if asset_id:
            asyncio.get_running_loop().create_task(self.watch_retry(kill))

    async def watch_retry(self, kill: Kill) -> None:
        deadline = kill.at + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            row = await asyncio.to_thread(self._row, kill.asset_id)
            if row is not None and row.run > kill.run:
                kill.retried_after_s = time.monotonic() - kill.at
                print(f"  {time.strftime('%H:%M:%S')} {kill.asset_id[:8]} claimed again (run"
                      f" {row.run}, attempt {row.attempt}) {kill.retried_after_s:.1f} s after"
                      " the kill", flush=True)
                return
            await asyncio.sleep(0.5)

    def _row(self, asset_id: str) -> Asset | None:
        with self.services.db.session() as session:
            row = session.get(Asset, asset_id)
            if row is not None:
                session.expunge(row)
            return row

    def sample_rss(self, stop: threading.Event, server_rss: list[tuple[float, int]]) -> None:
        while not stop.wait(RSS_SAMPLE_S):
            server = self.system.server
            if server is not None:
                server_rss.append((time.monotonic(), tree_rss_kib(server.pid)))
            for worker in self.system.live_workers():
                if not descendants(worker.process.pid):
                    worker.idle_rss.append((time.monotonic(),
                                            tree_rss_kib(worker.process.pid)))


def published_versions(storage_root: Path, asset_id: str) -> tuple[set[str], set[str]]:
    """Version folders of an asset: (complete: with their own master, partial)."""
    folder = storage_root / "hls" / asset_id
    complete, partial = set(), set()
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.is_dir() and entry.name.startswith("v"):
            (complete if (entry / "master.m3u8").exists() else partial).add(entry.name)
    return complete, partial


def ready_lines(logs: Path) -> Counter[str]:
    """'asset ready' log lines per asset, over every worker's log."""
    found: Counter[str] = Counter()
    for log in logs.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"asset ready"' in line:
                with contextlib.suppress(ValueError):
                    found[json.loads(line).get("asset_id", "")] += 1
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


async def run_load(soak: Soak, tokens: list[str], cdn_port: int, origin_port: int,
                   seconds: float, warmup_s: float, marks: dict[str, float]) -> Fleet:
    fleet = Fleet()
    playable = [a for a, row in (await asyncio.to_thread(soak.statuses)).items()
                if row.status == "ready"]
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        tasks = [asyncio.create_task(box(n, token, ("127.0.0.1", cdn_port),
                                         ("127.0.0.1", origin_port), playable, fleet, stop,
                                         soak.args.seed))
                 for n, token in enumerate(tokens)]
        tasks += [asyncio.create_task(soak.uploader(client, stop)),
                  asyncio.create_task(soak.killer(client, stop)),
                  asyncio.create_task(soak.watch_ready(playable, stop))]
        marks["load started"] = time.monotonic()
        await asyncio.sleep(warmup_s)
        marks["warm"] = time.monotonic()
        await asyncio.sleep(max(0.0, seconds - warmup_s))
        marks["load ended"] = time.monotonic()
        stop.set()
        await asyncio.gather(*tasks)
        print(f"  {time.strftime('%H:%M:%S')} load over; waiting for every upload to settle",
              flush=True)
        settled = await soak.wait_settled(soak.uploaded, DRAIN_TIMEOUT_S)
        # Retries still being watched finish too.
        while any(k.asset_id and k.retried_after_s is None for k in soak.kills) and (
                time.monotonic() - marks["load ended"] < DRAIN_TIMEOUT_S):
            await asyncio.sleep(1)
        marks["drained"] = time.monotonic()
        if not settled:
            print(f"  uploads still not settled {DRAIN_TIMEOUT_S:g} s after the load")
    return fleet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=120.0,
                        help="seconds between worker kills (SIGKILL of the whole tree)")
    parser.add_argument("--upload-every", type=float, nargs=2, default=(10.0, 20.0),
                        metavar=("MIN", "MAX"), help="seconds between uploads, uniform")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true",
                        help="keep the data dir (logs, database, storage)")
    args = parser.parse_args()

    try:
        nginx_binary()
        js_module()
    except FileNotFoundError as exc:
        sys.exit(str(exc))
    require("ffmpeg", "apt-get install -y ffmpeg")
    if not Path(sys.executable).with_name("granian").exists():
        sys.exit("granian not found: .venv/bin/pip install granian")
    print(machine_facts())
    warn_if_busy()

    seconds = args.minutes * 60
    tmp = Path(tempfile.mkdtemp(prefix="stb-soak-"))
    data_dir = tmp / "data"
    origin_port = free_port()
    # The defaults otherwise: lease, reconciler, back-off, key rate limit per box.
    settings = Settings(data_dir=data_dir, public_base_url=f"http://127.0.0.1:{origin_port}")
    system = System(data_dir, {})
    services: Services | None = None
    stop_sampling = threading.Event()
    server_rss: list[tuple[float, int]] = []
    marks: dict[str, float] = {}
    interrupted = False
    # SIGTERM and SIGHUP end the run the way Ctrl-C does: through the finally below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    other = OtherCpu()
    try:
        redis, redis_url = start_redis_aof(tmp / "redis")
        system.redis = redis
        settings = settings.with_(redis_url=redis_url)
        system.env.update(settings.to_env())
        if imported_from(system.env) != REPO.resolve():
            raise SystemExit(f"spawned processes would not import this tree ({REPO})")
        migrations.upgrade(settings.resolved_database_url)
        system.start_server(origin_port)
        api = f"http://127.0.0.1:{origin_port}"
        nginx = Nginx(tmp / "cdn", f"127.0.0.1:{origin_port}")
        system.nginx = nginx
        nginx.start()
        system.start_worker(killable=False)
        system.start_worker(killable=True)
        services = build_services(settings)
        ttl = int(seconds + DRAIN_TIMEOUT_S + 600)
        tokens = set_up_boxes(services, args.boxes, ttl)
        upload_token = subprocess.run(
            [*CLI, "token", "--scope", "assets:write assets:read", "--ttl", str(ttl)],
            env=system.env, cwd=REPO, capture_output=True, text=True, check=True,
            timeout=60).stdout.strip()
        clips = make_clips(tmp / "clips")
        soak = Soak(args, system, services, api, upload_token, clips)

        async def first_clips() -> bool:
            async with httpx.AsyncClient() as client:
                for _ in range(FIRST_CLIPS):
                    await soak.upload(client)
            return await soak.wait_settled(list(soak.uploaded), 300)

        print(f"data dir {data_dir}; origin {api}, CDN {nginx.base_url}; {args.boxes} boxes,"
              f" a kill every {args.kill_every:g} s, an upload every"
              f" {args.upload_every[0]:g}-{args.upload_every[1]:g} s, {args.minutes:g} min",
              flush=True)
        if not asyncio.run(first_clips()) or any(
                row.status != "ready" for row in soak.statuses().values()):
            raise SystemExit(f"the first clips did not all become ready; logs in {system.logs}"
                             " (run with --keep)")
        print(f"  {time.strftime('%H:%M:%S')} {FIRST_CLIPS} clips ready; boxes start",
              flush=True)
        sampler = threading.Thread(target=soak.sample_rss, args=(stop_sampling, server_rss),
                                   daemon=True)
        sampler.start()
        warmup_s = min(60.0, max(20.0, 0.1 * seconds))
        fleet = asyncio.run(run_load(soak, tokens, nginx.port, origin_port, seconds,
                                     warmup_s, marks))
        time.sleep(RSS_SAMPLE_S + 1)  # an idle sample of every worker after the drain
        stop_sampling.set()
        sampler.join()
        ours = [p.pid for p in [system.server, system.redis,
                                *(w.process for w in system.live_workers())] if p is not None]
        if nginx.process is not None:
            ours.append(nginx.process.pid)
        # Not counted: the work horses and ffmpeg of killed workers (never waited for).
        cpu_note = other.report(sum(process_tree_cpu_s(pid) for pid in ours))
        rows = soak.statuses()
        # Read now: the folder is removed before the report (unless --keep).
        ready_logged = ready_lines(system.logs)
        versions = {asset_id: published_versions(settings.data_dir / "storage", asset_id)
                    for asset_id in rows}
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping everything", flush=True)
    finally:
        stop_sampling.set()
        if services is not None:
            services.close()
        system.stop()
        left = system.left_behind()
        if args.keep:
            print(f"kept {tmp} (logs in {system.logs})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        print(f"processes left behind: {len(left)} {left or ''}")
        return 130
    return report(args, soak, fleet, rows, ready_logged, versions, system, server_rss, marks,
                  left, cpu_note, settings)


def report(args: argparse.Namespace, soak: Soak, fleet: Fleet, rows: dict[str, Asset],
           ready_logged: Counter[str], versions: dict[str, tuple[set[str], set[str]]],
           system: System, server_rss: list[tuple[float, int]], marks: dict[str, float],
           left: list[str], cpu_note: str, settings: Settings) -> int:
    goals: list[tuple[str, str, bool]] = []
    errors = sum(fleet.errors.values())
    goals.append(("playback errors", f"{errors}", errors == 0))

    ready = [a for a, r in rows.items() if r.status == "ready"]
    failed = [a for a, r in rows.items() if r.status == "failed"]
    pending = len(soak.uploaded) - len(ready) - len(failed)
    goals.append(("uploads ready / failed / unfinished / refused",
                  f"{len(ready)} / {len(failed)} / {pending} / {sum(soak.upload_errors.values())}"
                  f" of {len(soak.uploaded)}",
                  not failed and not pending and not soak.upload_errors))

    # Published once: the run that finished is the only one that wrote a complete
    # version (its own master last), and the only one that logged "asset ready".
    # Partial version folders are what killed runs left mid-publish: kept on purpose
    # until prune_after (STB_RETIRED_VERSION_KEEP_S), like a replaced version.
    twice, partial_total = [], 0
    for asset_id in ready:
        complete, partial = versions[asset_id]
        partial_total += len(partial)
        if complete != {rows[asset_id].version} or ready_logged[asset_id] != 1:
            twice.append(asset_id)
    goals.append(("assets published by more than one run", f"{len(twice)}"
                  f" ({partial_total} partial version folder(s) of killed runs)", not twice))

    retried = [k.retried_after_s for k in soak.kills if k.retried_after_s is not None]
    lost = [k for k in soak.kills if k.asset_id and k.retried_after_s is None]
    if retried:
        retry_text = (f"p50 {statistics.median(retried):.1f} s, p99"
                      f" {percentile(retried, 0.99):.1f} s (n={len(retried)})")
    else:
        retry_text = "no kill hit a transcode"
    goals.append(("worker death to job retry", retry_text + (f", {len(lost)} never retried"
                                                             if lost else ""),
                  bool(retried) and not lost
                  and percentile(retried, 0.99) <= GOAL_RETRY_P99_S))
    stray = sum(k.survivors for k in soak.kills)
    goals.append(("processes alive 1 s after a kill", f"{stray}", stray == 0))

    warm, end = marks["warm"], marks["load ended"]
    start_server = next((kib for t, kib in server_rss if t >= warm), None)
    end_server = next((kib for t, kib in reversed(server_rss) if t <= end), None)
    rss_rows = []
    if start_server and end_server:
        rss_rows.append(("server (granian tree)", start_server, end_server))
    for worker in system.workers:
        if worker.killed:
            continue
        after = [(t, kib) for t, kib in worker.idle_rss if t >= max(warm, worker.started + 10)]
        if len(after) >= 2:
            label = f"{worker.name} ({'since the start' if not worker.killable else 'replacement'})"
            rss_rows.append((label, after[0][1], after[-1][1]))
    for label, before, after in rss_rows:
        growth = (after - before) / before
        goals.append((f"RSS {label}", f"{before / 1024:.1f} -> {after / 1024:.1f} MiB"
                      f" ({100 * growth:+.1f}%)", growth <= GOAL_RSS_GROWTH))
    goals.append(("processes left behind", f"{len(left)}", not left))

    load_s = end - marks["load started"]
    total_requests = sum(fleet.requests.values())
    print(f"\n{machine_facts()}")
    print(f"{args.boxes} boxes for {load_s / 60:.1f} min, a kill every {args.kill_every:g} s,"
          f" an upload every {args.upload_every[0]:g}-{args.upload_every[1]:g} s;"
          f" lease {settings.run_lease_s:g} s, reconciler every"
          f" {settings.reconcile_interval_s:g} s; drain took"
          f" {marks['drained'] - end:.0f} s")
    print(cpu_note)
    print()
    print_table(["box requests", "count", "MB"],
                [(k, fleet.requests[k], f"{fleet.bytes[k] / 1e6:.1f}") for k in
                 ("master playlists", "media playlists", "init sections", "segments", "keys")]
                + [("all", total_requests, f"{sum(fleet.bytes.values()) / 1e6:.1f}")])
    print(f"\n{fleet.playbacks} playbacks, {fleet.segments_decrypted} init sections and"
          f" segments decrypted and checked; {total_requests / load_s:.0f} requests/s")
    if fleet.errors:
        print(f"playback errors: {dict(fleet.errors)}")
        for example in fleet.error_examples:
            print(f"  {example}")
    print("\nkills:")
    for k in soak.kills:
        what = (f"transcoding {k.asset_id[:8]} (run {k.run})" if k.while_transcoding
                else "idle")
        after = f"{k.retried_after_s:.1f} s" if k.retried_after_s is not None else "-"
        print(f"  {k.worker}: {k.pids} processes, {what}; claimed again after {after}")
    if retried:
        print(f"death to retry, s: {', '.join(f'{s:.1f}' for s in sorted(retried))}")
    print()
    print_table(["goal", "result", "met"], [(g, r, "yes" if ok else "NO") for g, r, ok in goals])
    missed = [g for g, _r, ok in goals if not ok]
    print(f"\n{'all goals met' if not missed else 'missed: ' + ', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
