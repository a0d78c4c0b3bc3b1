"""Content start time: "play" to the first rendered frame, in a real player through a CDN.

hls.js (npm, tests/player/) in Debian's headless Chromium driven by Playwright,
network throttled with Chromium's own emulation (CDP
Network.emulateNetworkConditions: default 20 Mb/s down, 40 ms per request),
through the project's CDN (deploy/cdn/nginx.conf under a real nginx, rendered
and run by tests/cdn/nginx.py as its tests do) in front of a real `stb-origin serve`. Every run
starts with an empty CDN cache (nginx restarted on an emptied cache folder) and
a fresh browser context (empty HTTP cache); the variants take turns, run by run.

Each variant is the same 1080p master through the project's own
transcode + packager (the pipeline's steps, in-process here so that each
variant can be configured), encrypted the same way (AES-128, keys from the
keystore, /keys with a playback token) and published to the same storage:

    naive          6 s MPEG-TS segments, top rung listed first (no start variant)
    before         what the pipeline made before: 4 s fMP4, top rung first
    ours           the pipeline's defaults now: 4 s fMP4 whose first 4 s are two 2 s
                   segments, the start variant (<= 3 Mb/s) listed first, and
                   EXT-X-SESSION-KEY in the master
    and ablations: each change of "ours" alone, 1 s first segments, other start rungs

    .venv/bin/python bench/start_time.py                   # all variants, 7 runs each
    .venv/bin/python bench/start_time.py --runs 3 --variants naive,ours
    .venv/bin/python bench/start_time.py --down-mbps 8 --latency-ms 80

Needs: apt-get install -y chromium nginx redis-server ffmpeg;
.venv/bin/pip install playwright; (cd tests/player && npm ci; scripts/test does it). Never
`playwright install`: the browser is Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import OUT, machine_facts, print_table, source_clip, warn_if_busy
from servers import Nginx, Process, free_port, require, start_redis, start_uvicorn, stb_env

from stb_origin.auth.tokens import load_signer
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key, key_uri
from stb_origin.envelope import Envelope, load_kek
from stb_origin.migrations import open_database
from stb_origin.packager.package import VariantInput, count_segments, keys_needed, package
from stb_origin.packager.playlists import START_BANDWIDTH
from stb_origin.packager.publish import point_master_at, publish
from stb_origin.settings import Settings
from stb_origin.storage import open_storage
from stb_origin.transcode import plan_ladder, probe, transcode

WORK = OUT / "start_time"
PLAYER = Path(__file__).resolve().parent.parent / "tests" / "player"
HLS_JS = PLAYER / "node_modules" / "hls.js" / "dist" / "hls.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
RUN_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Variant:
    name: str
    segment_format: str
    segment_seconds: float
    first_segments: int | None  # None: what plan_ladder decides (the pipeline's default)
    start_bandwidth: int | None  # None: highest first
    session_key: bool
    what: str

    @property
    def encode_key(self) -> tuple[str, float, int | None]:
        return (self.segment_format, self.segment_seconds, self.first_segments)


VARIANTS = {v.name: v for v in [
    Variant("naive", "ts", 6.0, 1, None, False, "6 s TS, top rung first"),
    Variant("before", "fmp4", 4.0, 1, None, False, "4 s fMP4, top rung first (old default)"),
    Variant("ours", "fmp4", 4.0, None, START_BANDWIDTH, True,
            "4 s fMP4, 2+2 s first, start <= 3 Mb/s, session key (new default)"),
    Variant("short-only", "fmp4", 4.0, None, None, False, "4 s fMP4, 2+2 s first, top first"),
    Variant("start-only", "fmp4", 4.0, 1, START_BANDWIDTH, False,
            "4 s fMP4, start <= 3 Mb/s first"),
    Variant("ours-1s", "fmp4", 4.0, 4, START_BANDWIDTH, True,
            "as ours with 4 x 1 s first segments"),
    Variant("ours-1.5M", "fmp4", 4.0, None, 1_500_000, True,
            "as ours, start <= 1.5 Mb/s first"),
    Variant("ours-5M", "fmp4", 4.0, None, 5_000_000, True, "as ours, start <= 5 Mb/s first"),
]}


# Building and publishing the variants -------------------------------------------------------


@dataclass
class Published:
    variant: Variant
    asset_id: str
    master_order: list[str]
    bandwidths: dict[str, int]
    first_segment_bytes: dict[str, int]
    media_playlist_bytes: int


def build(variants: list[Variant], clip: Path, base: Settings, preset: str) -> list[Published]:
    db = open_database(base.resolved_database_url)
    storage = open_storage(base)
    envelope = Envelope(load_kek(base))
    encoded: dict[tuple[str, float, int | None], Path] = {}
    published = []
    for variant in variants:
        settings = base.with_(segment_format=variant.segment_format,
                              segment_seconds=variant.segment_seconds, x264_preset=preset)
        source = probe(clip, settings)
        ladder = plan_ladder(source, settings)
        if variant.first_segments is not None:
            ladder = dataclasses.replace(ladder, first_segments=variant.first_segments)
        work = encoded.get(variant.encode_key)
        if work is None:
            work = WORK / "encoded" / f"{variant.segment_format}-{variant.segment_seconds:g}s-" \
                f"{ladder.first_segments}"
            started = time.monotonic()
            print(f"  transcoding for {variant.name} ({ladder.first_segments} first segments)"
                  " ...", flush=True)
            transcode(clip, source, ladder, work, settings)
            print(f"    {time.monotonic() - started:.0f} s", flush=True)
            encoded[variant.encode_key] = work
        asset_id = secrets.token_hex(16)
        keys = [generate_key() for _ in range(keys_needed(count_segments(work),
                                                          settings.key_rotation_segments))]
        with db.session() as session:
            keystore.store(session, asset_id, keys, envelope)
        packaged = WORK / "packaged" / variant.name
        shutil.rmtree(packaged, ignore_errors=True)
        variants_in = [VariantInput(r.name, r.width, r.height, ladder.fps)
                       for r in ladder.renditions]
        result = package(work, variants_in, keys, key_uri("", asset_id),
                         settings.key_rotation_segments, packaged,
                         iframes=[VariantInput(t.name, t.width, t.height, ladder.fps)
                                  for t in ladder.iframes],
                         start_bandwidth=variant.start_bandwidth,
                         session_key=variant.session_key)
        version = "v" + secrets.token_hex(6)
        publish(storage, asset_id, version, packaged)
        point_master_at(storage, asset_id, version)
        master = (packaged / "master.m3u8").read_text()
        order = [line.split("/")[0] for line in master.splitlines()
                 if line and not line.startswith("#")]
        first = {r.name: min((packaged / r.name).glob("seg_00000.*")).stat().st_size
                 for r in result.renditions}
        published.append(Published(
            variant, asset_id, order, {r.name: r.bandwidth for r in result.renditions}, first,
            (packaged / order[0] / "index.m3u8").stat().st_size))
    db.dispose()
    return published


# The CDN ------------------------------------------------------------------------------------


def cdn_conf(port: int, origin_port: int, prefix: Path) -> str:
    """A minimal proxy_cache CDN: what matters here is a cache that starts empty."""
    return f"""
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    proxy_cache_path {prefix}/cache levels=1:2 keys_zone=hls:16m max_size=2g inactive=1h
                     use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location /hls/ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hls;
            proxy_cache_lock on;
            proxy_cache_revalidate on;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /keys/ {{
            # private, no-store: never cached, always the origin's answer.
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class Cdn:
    """deploy/cdn/nginx.conf, rendered and run as its tests do (tests/cdn/nginx.py);
    without it, the minimal proxy_cache config above. restart_cold() empties the cache."""

    def __init__(self, origin_port: int) -> None:
        self.origin_port = origin_port
        self.prefix = WORK / "cdn"
        self.project = _project_cdn()
        self.what = ("deploy/cdn/nginx.conf" if self.project is not None
                     else "bench's minimal proxy_cache config (deploy/cdn/nginx.conf absent)")
        self.server: Any = None
        self.url = ""

    def restart_cold(self) -> None:
        self.stop()
        shutil.rmtree(self.prefix / "cache", ignore_errors=True)
        if self.project is not None:
            self.server = self.project.Nginx(self.prefix, f"127.0.0.1:{self.origin_port}")
            self.server.start()
            self.url = self.server.base_url
            return
        port = free_port()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.server = Nginx("cdn", cdn_conf(port, self.origin_port, self.prefix), self.prefix)
        self.url = f"http://127.0.0.1:{port}"
        self.server.start(self.url + "/hls/0/none.m3u8")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _project_cdn() -> Any:
    if not (REPO / "deploy" / "cdn" / "nginx.conf").exists():
        return None
    sys.path.insert(0, str(REPO))
    try:
        from tests.cdn import nginx
    except ImportError:
        return None
    return nginx


# The player -----------------------------------------------------------------------------------


def play_once(browser: Any, cdn: Cdn, asset_id: str, token: str, down_mbps: float,
              latency_ms: float) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        # Any page of the CDN's origin (a 404 here, fetched before throttling and
        # before "play"): the player page is written into it, so /keys is same-origin.
        page.goto(cdn.url + "/hls/0/player", timeout=RUN_TIMEOUT_S * 1000)
        page.set_content((PLAYER / "index.html").read_text())
        page.add_script_tag(path=str(HLS_JS))
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": down_mbps * 1e6 / 8,
            "uploadThroughput": max(1.0, down_mbps / 4) * 1e6 / 8,
        })
        result: dict[str, Any] = page.evaluate(
            "([src, token, timeout]) => window.startPlayback(src, token, timeout)",
            [f"{cdn.url}/hls/{asset_id}/master.m3u8", token, RUN_TIMEOUT_S * 1000])
        return result
    finally:
        context.close()


def run(args: argparse.Namespace) -> int:
    for tool, hint in (("nginx", "apt-get install -y nginx"),
                       ("redis-server", "apt-get install -y redis-server"),
                       ("ffmpeg", "apt-get install -y ffmpeg")):
        require(tool, hint)
    if not Path(CHROMIUM).exists():
        raise SystemExit("chromium not found: apt-get install -y chromium")
    if not HLS_JS.exists():
        raise SystemExit(f"hls.js not found: (cd {PLAYER} && npm ci)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("playwright not found: .venv/bin/pip install playwright") from None

    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    variants = [VARIANTS[n] for n in names]

    print(machine_facts())
    warn_if_busy()
    clip = source_clip(args.seconds, "1920x1080", 30)
    shutil.rmtree(WORK, ignore_errors=True)
    data = WORK / "data"
    redis, redis_url = start_redis(WORK / "redis")
    processes: list[Process] = [redis]
    cdn: Cdn | None = None
    try:
        base = Settings(data_dir=data, redis_url=redis_url)
        print(f"building {len(variants)} variants of {clip.name} (x264 {args.preset}) ...")
        published = build(variants, clip, base, args.preset)
        # The operator's token (no account to set up): what is compared is packaging.
        token = load_signer(base, open_database(base.resolved_database_url)).issue(
            ["playback"], ttl_s=3600)
        origin, origin_port = start_uvicorn(
            stb_env({"STB_DATA_DIR": str(data), "STB_REDIS_URL": redis_url}), WORK / "logs")
        processes.append(origin)
        cdn = Cdn(origin_port)
        print(f"CDN: nginx with {cdn.what}")

        print(f"\n{args.runs} runs per variant, {args.down_mbps:g} Mb/s down,"
              f" {args.latency_ms:g} ms per request, cold CDN and browser caches per run")
        results: dict[str, list[dict[str, Any]]] = {p.variant.name: [] for p in published}
        deadline = time.monotonic() + args.max_minutes * 60
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                for round_ in range(args.runs):
                    # Take turns, starting each round one variant further on.
                    order = published[round_ % len(published):] + \
                        published[:round_ % len(published)]
                    for item in order:
                        if time.monotonic() > deadline:
                            print("time limit reached; reporting what was measured")
                            break
                        cdn.restart_cold()
                        outcome = play_once(browser, cdn, item.asset_id, token,
                                            args.down_mbps, args.latency_ms)
                        results[item.variant.name].append(outcome)
                        print(f"  {round_ + 1}/{args.runs} {item.variant.name:<11}"
                              f" first frame {outcome.get('firstFrame', '-')} ms"
                              f" at {outcome.get('startHeight', '-')}p"
                              + (f"  ERROR {outcome['error']}" if "error" in outcome else ""),
                              flush=True)
            finally:
                browser.close()
        report(published, results, args)
        (WORK / "results.json").write_text(json.dumps(
            {name: runs for name, runs in results.items()}, indent=1))
        print(f"\nevery run's timings and requests: {WORK / 'results.json'}")
    finally:
        if cdn is not None:
            cdn.stop()
        for process in reversed(processes):
            process.stop()
    return 0


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r and "error" not in r]
    return statistics.median(values) if values else None


def report(published: list[Published], results: dict[str, list[dict[str, Any]]],
           args: argparse.Namespace) -> None:
    print("\nwhat each variant publishes:")
    rows = []
    for p in published:
        first = p.master_order[0]
        rows.append([p.variant.name, p.variant.what, first,
                     f"{p.bandwidths[first] / 1e6:.2f}",
                     f"{p.first_segment_bytes[first] / 1e3:.0f}",
                     f"{p.media_playlist_bytes}"])
    print_table(["variant", "packaging", "listed first", "its Mb/s",
                 "its 1st seg kB", "its playlist B"], rows)

    print("\nmedians (ms from play):")
    rows = []
    naive = _median(results.get("naive", []), "firstFrame")
    for p in published:
        runs = results[p.variant.name]
        ok = [r for r in runs if "error" not in r and "firstFrame" in r]
        first_frame = _median(runs, "firstFrame")
        heights = sorted({int(r["startHeight"]) for r in ok if r.get("startHeight")})
        rows.append([
            p.variant.name, f"{len(ok)}/{len(runs)}",
            _fmt(_median(runs, "manifestParsed")), _fmt(_median(runs, "firstFragment")),
            _fmt(_median(runs, "playing")), _fmt(first_frame),
            "/".join(f"{h}p" for h in heights) or "-",
            f"{first_frame / naive:.2f}" if first_frame and naive else "-",
        ])
    print_table(["variant", "ok", "master parsed", "1st segment", "playing", "first frame",
                 "started at", "x naive"], rows)
    ours = _median(results.get("ours", []), "firstFrame")
    if naive and ours:
        print(f"\nours vs naive: first frame {ours:.0f} ms vs {naive:.0f} ms:"
              f" {100 * (1 - ours / naive):.0f}% less time ({naive / ours:.2f}x as fast);"
              f" goal: at least 50% less")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per variant (default 7)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--seconds", type=float, default=24, help="length of the master")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (the default's)")
    parser.add_argument("--down-mbps", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="stop measuring after this long (default 30)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100:
        parser.error("--runs must be 1..100")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
