"""The origin next to nginx serving the same published asset as static files.

One real asset (the default ladder of a 1080p clip through the project's
transcode + packager, published to storage the way the pipeline does) is
served by:

    nginx           static files from the storage folder (1 worker, sendfile)
    bare/uvicorn    no app: same-sized bodies from memory (asgi_factory.bare), the
    bare/granian    most any ASGI app gets out of that server here
    fs/uvicorn      `stb-origin serve` (uvicorn, one process, h11 + asyncio as the
                    project installs it) on the folder backend
    fs/uvicorn-std  the same with httptools + uvloop (uvicorn[standard]'s extras)
    fs/granian      the same app under granian (one worker; bench/asgi_factory.py)
    fs/granian-nomw the origin's routes alone under granian: no access log, no
                    request metrics (what the middleware costs)
    s3/uvicorn      `stb-origin serve` on the S3 backend (a real moto_server)
    s3/granian      the same app under granian on the S3 backend

and wrk on loopback (wrk -t1, 64 connections by default) asks for the master
playlist, a media playlist, the segments nearest 1 MB below and above the
origin's in-memory limit per object over and over (hot), and ~1 MB
segments each asked for once (cold: every request another object, so no cache
of the origin can answer; "cold-disk" also drops each file from the OS page
cache first, with posix_fadvise, so nginx and the origin both read the disk).
Figures are requests/s and wrk's p50/p99 latency; ratios are to nginx in the
same run (measured first and again last; the mean of the two). The servers and
wrk share this machine's cores: the figures say how the servers compare here,
not what a production box does.

    .venv/bin/python bench/origin_vs_nginx.py                    # 5 s per figure
    .venv/bin/python bench/origin_vs_nginx.py --duration 10 --connections 64
    .venv/bin/python bench/origin_vs_nginx.py --servers nginx,fs/uvicorn,fs/granian

Needs: apt-get install -y wrk nginx redis-server ffmpeg; .venv/bin/pip install granian;
for fs/uvicorn-std: .venv/bin/pip install --target bench/out/pyextra httptools uvloop
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import OUT, OtherCpu, machine_facts, print_table, source_clip, warn_if_busy
from servers import (
    NGINX_TYPES,
    Nginx,
    Process,
    free_port,
    require,
    start_bare_uvicorn,
    start_granian,
    start_moto,
    start_redis,
    start_uvicorn,
    stb_env,
    wait_http,
)
from wrk import Figure, wrk

from stb_origin.drm.keys import generate_key
from stb_origin.origin.objectcache import DEFAULT_MAX_OBJECT_BYTES
from stb_origin.packager.package import VariantInput, count_segments, keys_needed, package
from stb_origin.packager.publish import point_master_at, publish
from stb_origin.settings import Settings
from stb_origin.storage import open_storage
from stb_origin.transcode import plan_ladder, probe, transcode

WORK = OUT / "origin_vs_nginx"
MOTO_KEYS = {"STB_S3_ACCESS_KEY": "bench-access", "STB_S3_SECRET_KEY": "bench-secret-key"}
SERVERS = ("nginx", "bare/uvicorn", "bare/granian", "fs/uvicorn", "fs/uvicorn-std",
           "fs/granian", "fs/granian-nomw", "s3/uvicorn", "s3/granian")
TARGET_SEGMENT_BYTES = 1_000_000
@dataclass
class Asset:
    asset_id: str
    master: str  # request paths
    media: str
    segment: str  # the segment nearest 1 MB within the origin's per-object cache limit
    segment_bytes: int
    big_segment: str  # the segment nearest 1 MB above that limit: always streamed
    big_segment_bytes: int
    playlist_bytes: int
    cold: list[str]  # distinct ~1 MB segments (hard links: one inode, many objects)
    cold_disk: list[str]  # distinct files (copies), dropped from the page cache before use
    cold_files: list[Path]


# The asset ----------------------------------------------------------------------------------


def build_asset(clip: Path, settings: Settings, cold_count: int, cold_disk_count: int,
                s3_settings: Settings | None) -> Asset:
    source = probe(clip, settings)
    ladder = plan_ladder(source, settings)
    encoded = WORK / "encoded"
    print(f"transcoding {clip.name} with the default ladder ...", flush=True)
    transcode(clip, source, ladder, encoded, settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(encoded),
                                                      settings.key_rotation_segments))]
    asset_id = secrets.token_hex(16)
    packaged = WORK / "packaged"
    package(encoded, [VariantInput(r.name, r.width, r.height, ladder.fps)
                      for r in ladder.renditions],
            keys, lambda kid: f"/keys/{asset_id}/{kid}", settings.key_rotation_segments,
            packaged, iframes=[VariantInput(t.name, t.width, t.height, ladder.fps)
                               for t in ladder.iframes])
    # The segments nearest 1 MB below and above the origin's per-object cache limit.
    def nearest(paths: list[Path]) -> Path:
        return min(paths, key=lambda p: abs(p.stat().st_size - TARGET_SEGMENT_BYTES))

    every = list(packaged.glob("*/seg_*"))
    small = [p for p in every if p.stat().st_size <= DEFAULT_MAX_OBJECT_BYTES]
    big = [p for p in every if p.stat().st_size > DEFAULT_MAX_OBJECT_BYTES]
    segment = nearest(small or every)
    big_segment = nearest(big or every)
    version = "v" + secrets.token_hex(6)
    storage = open_storage(settings)
    publish(storage, asset_id, version, packaged)
    point_master_at(storage, asset_id, version)
    if s3_settings is not None:
        s3 = open_storage(s3_settings)
        publish(s3, asset_id, version, packaged)
        point_master_at(s3, asset_id, version)

    rendition = segment.parent.name
    base = f"/hls/{asset_id}/{version}/{rendition}"
    folder = Path(settings.resolved_storage_url.removeprefix("file://")) / "hls" / asset_id \
        / version / rendition
    # Cold objects in the folder backend only (the target is for it): hard links of
    # the segment (distinct objects to the origin; one page-cache inode) and real
    # copies (distinct on disk too).
    published_segment = folder / segment.name
    cold, cold_disk, files = [], [], []
    for i in range(cold_count):
        name = f"cold_{i:06d}.m4s"
        os.link(published_segment, folder / name)
        cold.append(f"{base}/{name}")
    for i in range(cold_disk_count):
        name = f"disk_{i:06d}.m4s"
        shutil.copyfile(published_segment, folder / name)
        storage_copy_xattr(published_segment, folder / name)
        cold_disk.append(f"{base}/{name}")
        files.append(folder / name)
    big_path = f"/hls/{asset_id}/{version}/{big_segment.parent.name}/{big_segment.name}"
    return Asset(asset_id, f"/hls/{asset_id}/master.m3u8", f"{base}/index.m3u8",
                 f"{base}/{segment.name}", segment.stat().st_size, big_path,
                 big_segment.stat().st_size, (packaged / rendition / "index.m3u8").stat().st_size,
                 cold, cold_disk, files)


def storage_copy_xattr(src: Path, dst: Path) -> None:
    # The folder backend keeps the content type in an extended attribute.
    try:
        for name in os.listxattr(src):
            os.setxattr(dst, name, os.getxattr(src, name))
    except OSError:
        pass


def drop_from_page_cache(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# Servers ------------------------------------------------------------------------------------


def nginx_static(root: Path) -> tuple[Nginx, int]:
    port = free_port()
    prefix = WORK / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = f"""
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    {NGINX_TYPES}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root};
        location /hls/ {{ }}
    }}
}}
"""
    nginx = Nginx("nginx-static", conf, prefix)
    nginx.start(f"http://127.0.0.1:{port}/hls/")
    return nginx, port


# Main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    for tool, hint in (("wrk", "apt-get install -y wrk"), ("nginx", "apt-get install -y nginx"),
                       ("redis-server", "apt-get install -y redis-server")):
        require(tool, hint)
    servers = args.servers.split(",")
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        raise SystemExit(f"unknown servers {unknown}; known: {', '.join(SERVERS)}")
    if not args.connections > 0 or not 0 < args.duration <= 60:
        raise SystemExit("--connections must be > 0 and --duration 0..60")

    print(machine_facts())
    warn_if_busy()
    clip = source_clip(args.seconds, "1920x1080", 30)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    data = WORK / "data"
    redis, redis_url = start_redis(WORK / "redis")
    processes: list[Process] = [redis]
    nginx: Nginx | None = None
    asset: Asset | None = None
    try:
        s3_env: dict[str, str] = {}
        s3_settings = None
        if any(s.startswith("s3/") for s in servers):
            moto, moto_port = start_moto(WORK / "logs")
            processes.append(moto)
            s3_env = {"STB_STORAGE_URL": "s3://bench", "STB_S3_ENDPOINT":
                      f"127.0.0.1:{moto_port}", **MOTO_KEYS}
            s3_settings = Settings(data_dir=data, redis_url=redis_url,
                                   storage_url="s3://bench",
                                   s3_endpoint=f"127.0.0.1:{moto_port}",
                                   s3_access_key=MOTO_KEYS["STB_S3_ACCESS_KEY"],
                                   s3_secret_key=MOTO_KEYS["STB_S3_SECRET_KEY"])
        settings = Settings(data_dir=data, redis_url=redis_url)
        asset = build_asset(clip, settings, args.cold_objects, args.cold_disk_objects,
                            s3_settings)
        print(f"segments: {asset.segment_bytes} and {asset.big_segment_bytes} bytes; the"
              f" origin keeps objects up to {DEFAULT_MAX_OBJECT_BYTES} bytes in memory")
        cold_list = WORK / "cold.txt"
        cold_list.write_text("\n".join(asset.cold) + "\n")
        cold_disk_list = WORK / "cold_disk.txt"
        cold_disk_list.write_text("\n".join(asset.cold_disk) + "\n")

        base_env = {"STB_DATA_DIR": str(data), "STB_REDIS_URL": redis_url}
        bare_env = {**base_env, "BENCH_PLAYLIST_BYTES": str(asset.playlist_bytes),
                    "BENCH_SEGMENT_BYTES": str(asset.segment_bytes)}
        storage_root = Path(settings.resolved_storage_url.removeprefix("file://"))
        starters: dict[str, Callable[[], tuple[Process | Nginx, int]]] = {
            "nginx": lambda: nginx_static(storage_root),
            "bare/uvicorn": lambda: start_bare_uvicorn(stb_env(bare_env), WORK / "logs"),
            "bare/granian": lambda: start_granian(stb_env(bare_env), WORK / "logs",
                                                  "bare-granian", "asgi_factory:bare"),
            "fs/uvicorn": lambda: start_uvicorn(stb_env(base_env), WORK / "logs",
                                                "fs-uvicorn"),
            "fs/uvicorn-std": lambda: start_uvicorn(stb_env(base_env), WORK / "logs",
                                                    "fs-uvicorn-std", standard=True),
            "fs/granian": lambda: start_granian(stb_env(base_env), WORK / "logs",
                                                "fs-granian"),
            "fs/granian-nomw": lambda: start_granian(stb_env(base_env), WORK / "logs",
                                                     "fs-granian-nomw",
                                                     "asgi_factory:origin_only"),
            "s3/uvicorn": lambda: start_uvicorn(stb_env({**base_env, **s3_env}),
                                                WORK / "logs", "s3-uvicorn"),
            "s3/granian": lambda: start_granian(stb_env({**base_env, **s3_env}),
                                                WORK / "logs", "s3-granian"),
        }
        tests: list[tuple[str, str, Path | None, bool]] = [
            ("master playlist", asset.master, None, False),
            ("media playlist", asset.media, None, False),
            (f"segment {asset.segment_bytes / 1e6:.2f} MB hot", asset.segment, None, False),
            (f"segment {asset.big_segment_bytes / 1e6:.2f} MB hot", asset.big_segment, None,
             False),
            ("segment cold (fs)", asset.cold[0], cold_list, False),
            ("segment cold-disk (fs)", asset.cold_disk[0], cold_disk_list, True),
        ]
        figures: dict[tuple[str, str], Figure] = {}
        other = OtherCpu()
        print(f"\nwrk -t1 -c{args.connections} -d{args.duration:g}s per figure"
              " (after a 1 s warm-up for hot objects)\n")
        # nginx first and again last: the mean of the two is the reference, and
        # their difference shows how much the machine drifted during the run.
        others = [s for s in servers if s != "nginx"]
        order = ["nginx", *others, "nginx"] if "nginx" in servers and others else servers
        for n, server in enumerate(order):
            again = server == "nginx" and n > 0
            started, port = starters[server]()
            if isinstance(started, Nginx):
                nginx = started
            else:
                processes.append(started)
            wait_http(f"http://127.0.0.1:{port}{asset.master}")
            for label, path, paths_file, disk in tests:
                is_cold = paths_file is not None
                if is_cold and not server.startswith(("fs/", "nginx")):
                    continue  # the cold targets are for the folder backend
                if server.startswith("bare/") and path == asset.big_segment:
                    continue  # bare serves one segment size
                if disk:
                    drop_from_page_cache(asset.cold_files)
                elif not is_cold:
                    wrk(port, path, args.connections, 1.0)  # warm-up
                duration = args.duration
                if disk and (server, "segment cold (fs)") in figures:
                    # Each file once: stop well before the list runs out, judging by
                    # this server's page-cache cold rate (the disk is no faster).
                    rate = figures[(server, "segment cold (fs)")].requests_s
                    duration = max(1.0, min(args.duration,
                                            int(0.8 * len(asset.cold_disk) / rate)))
                figure = wrk(port, path, args.connections, duration, paths_file)
                if again:
                    first = figures[("nginx", label)]
                    figures[("nginx (end)", label)] = figure
                    figures[("nginx", label)] = Figure(
                        (first.requests_s + figure.requests_s) / 2,
                        (first.p50_ms + figure.p50_ms) / 2, (first.p99_ms + figure.p99_ms) / 2,
                        first.errors + figure.errors, "mean of first and last")
                else:
                    figures[(server, label)] = figure
                print(f"  {server:<11} {label:<28} {figure.requests_s:9.0f} req/s"
                      f"  p50 {figure.p50_ms:7.2f} ms  p99 {figure.p99_ms:7.2f} ms"
                      + (f"  errors {figure.errors}" if figure.errors else "")
                      + (f"  ({figure.note})" if figure.note else ""), flush=True)
            if isinstance(started, Nginx):
                started.stop()
                nginx = None
            else:
                started.stop()
                processes.remove(started)
        print()
        print(other.report())
        report(servers, [t[0] for t in tests], figures, args)
    finally:
        if nginx is not None:
            nginx.stop()
        for process in reversed(processes):
            process.stop()
        # The cold copies are GBs of disk; the rest of WORK stays for a look.
        for copy in (asset.cold_files if asset is not None else []):
            copy.unlink(missing_ok=True)
    return 0


TARGETS = {"master playlist": 0.3, "media playlist": 0.3, "hot": 0.9,
           "segment cold (fs)": 0.5, "segment cold-disk (fs)": 0.5}


def _target(label: str) -> float | None:
    if label.endswith(" hot"):
        return TARGETS["hot"]
    return TARGETS.get(label)


def report(servers: list[str], labels: list[str], figures: dict[tuple[str, str], Figure],
           args: argparse.Namespace) -> None:
    print(f"\nrequests/s (ratio to nginx in this run; target in brackets),"
          f" p50/p99 ms, {args.connections} connections:")
    rows = []
    for label in labels:
        ref = figures.get(("nginx", label))
        for server in [*servers, "nginx (end)"]:
            figure = figures.get((server, label))
            if figure is None:
                continue
            target = _target(label)
            ratio = ""
            if ref is not None and not server.startswith("nginx") and ref.requests_s > 0:
                value = figure.requests_s / ref.requests_s
                verdict = "" if target is None else (" ok" if value >= target else " MISS")
                ratio = f"{value:.2f}x [{target:g}x]{verdict}" if target else f"{value:.2f}x"
            p99 = f"{figure.p99_ms:.2f}"
            if "playlist" in label and not server.startswith("nginx"):
                p99 += " ok" if figure.p99_ms <= 10 else " MISS(10)"
            rows.append([label, server, f"{figure.requests_s:.0f}", ratio,
                         f"{figure.p50_ms:.2f}", p99, figure.errors, figure.note])
    print_table(["object", "server", "req/s", "vs nginx", "p50", "p99", "errors", "note"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated, of: {', '.join(SERVERS)}")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per figure")
    parser.add_argument("--seconds", type=float, default=12, help="length of the master clip")
    parser.add_argument("--cold-objects", type=int, default=50_000,
                        help="distinct cold objects (hard links; cost no disk)")
    parser.add_argument("--cold-disk-objects", type=int, default=3000,
                        help="distinct cold files (copies: this many MB of disk)")
    args = parser.parse_args()
    started = time.monotonic()
    code = run(args)
    print(f"\ntook {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
