"""Offline sync: what a box pays to get the whole copy, and to catch up after changes.

One `stb-origin serve` (uvicorn, as deployed) over SQLite (or --database-url) and a
private Redis holds --titles movies (each with a ready asset in a package the box's
account is entitled to) and --channels channels with a --days-day guide of
30-minute programmes. The reference box (`stb_origin.sync.client`) then:

    full, gzip       a snapshot into an empty cache, pages of --limit items, gzip asked
    full, identity   the same without gzip (what gzip saves)
    incremental      after --changes changes made through the API (a third each:
                     title renames, channel renames, guide re-imports of one programme)

For each: wall time, pages, items, bytes on the wire; and the ratios.

    .venv/bin/python bench/sync.py
    .venv/bin/python bench/sync.py --channels 20 --days 2 --changes 10   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import OtherCpu, machine_facts, print_table, warn_if_busy
from servers import start_redis, start_uvicorn, stb_env
from sqlalchemy import insert

from stb_origin import migrations
from stb_origin.accounts import devices, entitlements, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.models import Package, PackageAsset
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset, Status
from stb_origin.catalog.models import Title, TitleAsset
from stb_origin.db import Database
from stb_origin.db.types import new_id
from stb_origin.guide.models import ChannelMapping, Programme
from stb_origin.services import build_services
from stb_origin.settings import from_env
from stb_origin.sync.client import BoxCache

RENDITIONS = [{"type": "video", "name": "720p", "width": 1280, "height": 720,
               "codecs": "avc1.64001f,mp4a.40.2", "bandwidth": 3_000_000,
               "average_bandwidth": 2_500_000, "segment_count": 300}]


@dataclass
class Run:
    name: str
    seconds: float
    pages: int
    items: int
    wire_bytes: int


def populate(url: str, channels: int, days: int, titles: int) -> tuple[list[str], list[str]]:
    """Channels, their XMLTV mapping, the guide and the catalog, written straight to the
    tables; (channel ids, title ids)."""
    database = Database(url)
    title_ids, asset_ids = [new_id() for _ in range(titles)], [new_id() for _ in range(titles)]
    with database.session() as session:
        session.execute(insert(Package), [{"name": "bench", "title": "Bench"}])
        session.execute(insert(Asset), [
            {"id": a, "title": "bench", "status": Status.READY.value,
             "source_key": f"sources/{a}/source.mp4", "renditions": RENDITIONS}
            for a in asset_ids])
        session.execute(insert(Title), [
            {"id": t, "kind": "movie", "name": f"Movie {n}", "description": "A film. " * 20,
             "rating_scheme": "MPAA", "age_limit": n % 18} for n, t in enumerate(title_ids)])
        session.execute(insert(TitleAsset), [
            {"title_id": t, "asset_id": a, "role": "main"}
            for t, a in zip(title_ids, asset_ids, strict=True)])
        session.execute(insert(PackageAsset), [
            {"package_name": "bench", "asset_id": a} for a in asset_ids])
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = [new_id() for _ in range(channels)]
    with database.session() as session:
        session.execute(insert(Channel), [
            {"id": cid, "name": f"Channel {n}", "number": n + 1, "sources": ["udp://239.0.0.1:1"],
             "ladder": "auto", "revision": 1, "epoch": 0, "status": "starting"}
            for n, cid in enumerate(ids)])
        session.execute(insert(ChannelMapping), [
            {"xmltv_id": f"ch{n}.tv", "channel_id": cid} for n, cid in enumerate(ids)])
        for cid in ids:
            session.execute(insert(Programme), [{
                "id": new_id(), "channel_id": cid,
                "starts_at": start + timedelta(minutes=30 * k),
                "ends_at": start + timedelta(minutes=30 * (k + 1)),
                "title": f"Programme {k}", "subtitle": None,
                "description": "What happens in this half hour, in a sentence or two, as a"
                               " guide describes it.",
                "categories": ["News"], "episode": None, "rating": None, "icon_url": None,
                "xmltv_channel": "x"} for k in range(days * 48)])
    database.dispose()
    return ids, title_ids


def run_sync(base: str, token: str, cache: BoxCache, limit: int, gzip_ok: bool,
             name: str) -> Run:
    pages = items = wire = 0
    began = time.perf_counter()
    while True:
        query = {"limit": str(limit)}
        if cache.cursor is not None:
            query["cursor"] = cache.cursor
        request = urllib.request.Request(
            f"{base}/v1/sync?{urllib.parse.urlencode(query)}",
            headers={"Authorization": f"Bearer {token}",
                     "Accept-Encoding": "gzip" if gzip_ok else "identity"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = answer.read()
            wire += len(body)
            if answer.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
        page: dict[str, Any] = json.loads(body)
        cache.apply(page)
        pages += 1
        items += len(page["upserts"]) + len(page["deletes"])
        if not page["more"]:
            return Run(name, time.perf_counter() - began, pages, items, wire)


def call(base: str, token: str, method: str, path: str, body: bytes,
         content_type: str) -> None:
    request = urllib.request.Request(base + path, data=body, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def make_changes(base: str, admin: str, ids: list[str], titles: list[str], count: int) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for n in range(count):
        if n % 3 == 2 and titles:
            call(base, admin, "PATCH", f"/v1/catalog/titles/{titles[n]}",
                 json.dumps({"name": f"Renamed {n}"}).encode(), "application/json")
        elif n % 3 == 0:
            call(base, admin, "PATCH", f"/v1/channels/{ids[n]}",
                 json.dumps({"name": f"Renamed {n}"}).encode(), "application/json")
        else:
            begins = f"{start + timedelta(hours=n):%Y%m%d%H%M%S} +0000"
            ends = f"{start + timedelta(hours=n, minutes=30):%Y%m%d%H%M%S} +0000"
            xml = (f'<tv><programme start="{begins}" stop="{ends}" channel="ch{n}.tv">'
                   f"<title>Breaking {n}</title></programme></tv>")
            call(base, admin, "POST", "/v1/guide/imports", xml.encode(), "application/xml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--titles", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.changes > min(args.channels, args.titles or args.channels):
        raise SystemExit("--changes: at most --channels and --titles (each touches another)")
    warn_if_busy()
    print(machine_facts())
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    redis, redis_url = start_redis(work / "redis")
    server = None
    try:
        env = {"STB_DATA_DIR": str(work / "data"), "STB_REDIS_URL": redis_url}
        if args.database_url:
            env["STB_DATABASE_URL"] = args.database_url
        settings = from_env(env)
        url = settings.resolved_database_url
        migrations.upgrade(url)
        ids, titles = populate(url, args.channels, args.days, args.titles)
        services = build_services(settings)
        with services.db.session() as session:
            user = users.create_user(session, "box@example.com")
            device = devices.register_device(session, user.account_id, "SN-1", "Box",
                                             Capabilities(), max_devices=5)
            entitlements.grant(session, user.account_id, "bench")
        token = services.signer.issue(["playback", "account"], subject=user.id,
                                      device_id=device.id)
        admin = services.signer.issue(["admin", "assets:write"])
        services.close()
        server, port = start_uvicorn(stb_env(env), work)
        base = f"http://127.0.0.1:{port}"
        other = OtherCpu()
        runs = []
        caches = [BoxCache(work / f"box-{n}.db") for n in range(2)]
        runs.append(run_sync(base, token, caches[0], args.limit, True, "full, gzip"))
        runs.append(run_sync(base, token, caches[1], args.limit, False, "full, identity"))
        make_changes(base, admin, ids, titles, args.changes)
        runs.append(run_sync(base, token, caches[0], args.limit, True,
                             f"incremental after {args.changes} changes, gzip"))
        for cache in caches:
            cache.close()
        print(f"\n{args.titles:,} titles; {args.channels} channels, a {args.days}-day guide of"
              f" 30-minute programmes ({args.channels * args.days * 48:,} programmes);"
              f" pages of {args.limit} items")
        print_table(["sync", "seconds", "pages", "items", "bytes on the wire"],
                    [[r.name, f"{r.seconds:.2f}", r.pages, f"{r.items:,}", f"{r.wire_bytes:,}"]
                     for r in runs])
        full, plain, incremental = runs
        print(f"\ngzip: {plain.wire_bytes / full.wire_bytes:.1f}x fewer bytes;"
              f" incremental vs full: {full.wire_bytes / incremental.wire_bytes:.0f}x fewer"
              f" bytes, {full.seconds / incremental.seconds:.0f}x less time")
        print(other.report())
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
