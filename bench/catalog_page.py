"""The box's catalog page: GET /v1/titles answered in full (200) against the same page
revalidated with its ETag (304), side by side in one run.

A catalog of --titles movies (each with one ready asset in one package) and
--series series of --episodes episodes is written straight into the database;
one subscriber account is entitled to the package, and its box (a device
token, capabilities H.264 up to 1080p) asks for the first page of --limit
titles. The server runs under granian (one worker) pinned to CPU 0 with
`taskset`; wrk runs on CPU 1:

    page 200      GET /v1/titles?limit=N: every check, the visibility query, the body
    page 304      the same with If-None-Match: the ETag of that body
    detail 200    GET /v1/titles/{id} of one movie
    detail 304    the same, revalidated
    graphql home  POST /graphql: a home screen in one query (HOME: 20 titles with their
                  artwork, playable assets and 5 episodes of a series; 20 channels with
                  now and next of --channels channels with a day's guide; the entitlements)

The rounds alternate the order of the cases; the figures are medians. CPU
time per request (the server's process tree, from /proc) is printed too: it
moves least when other processes share the machine.

    .venv/bin/python bench/catalog_page.py
    .venv/bin/python bench/catalog_page.py --titles 10000 --duration 10 --rounds 3
    .venv/bin/python bench/catalog_page.py --database-url postgresql://postgres@127.0.0.1/bench

Needs: apt-get install -y wrk redis-server util-linux (taskset); granian (in
the project's venv).
"""

from __future__ import annotations

import argparse
import json
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from common import (
    OUT,
    OtherCpu,
    machine_facts,
    median,
    print_table,
    process_tree_cpu_s,
    warn_if_busy,
)
from servers import Process, start_granian, start_redis, stb_env
from sqlalchemy.orm import Session
from wrk import Figure, wrk

from stb_origin import migrations
from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.models import PackageAsset
from stb_origin.assets.channels import Channel
from stb_origin.assets.records import Asset, Status
from stb_origin.catalog.models import Title, TitleAsset
from stb_origin.db.types import new_id
from stb_origin.guide.models import Programme
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings

WORK = OUT / "catalog_page"
SERVER_CPU, WRK_CPU = 0, 1
RENDITIONS = [{"type": "video", "name": "720p", "width": 1280, "height": 720,
               "codecs": "avc1.64001f,mp4a.40.2", "bandwidth": 3_000_000,
               "average_bandwidth": 2_500_000, "segment_count": 300}]


def _add_playable(session: Session, title_ids: list[str]) -> None:
    """A ready asset for each title, linked to it and in the package."""
    asset_ids = [new_id() for _ in title_ids]
    session.add_all(Asset(id=a, title="bench", status=Status.READY.value,
                          source_key=f"sources/{a}/source.mp4", renditions=RENDITIONS)
                    for a in asset_ids)
    session.flush()  # the rows below refer to these
    session.add_all(TitleAsset(title_id=t, asset_id=a, role="main")
                    for t, a in zip(title_ids, asset_ids, strict=True))
    session.add_all(PackageAsset(package_name="bench", asset_id=a) for a in asset_ids)


def set_up(services: Services, movies: int, series: int, episodes: int) -> tuple[str, str]:
    """The catalog and an entitled box; (a movie's id, the box's token)."""
    start = datetime.now(UTC) - timedelta(days=1)
    with services.db.session() as session:
        packages.create_package(session, "bench", "Bench")
        user = users.create_user(session, "bench@example.com")
        device = devices.register_device(session, user.account_id, "SN-BENCH-1", "bench box",
                                         Capabilities(max_height=1080, codecs=("avc1", "mp4a")),
                                         max_devices=5)
        entitlements.grant(session, user.account_id, "bench", valid_from=start)
        user_id, device_id = user.id, device.id
    movie_ids = [new_id() for _ in range(movies)]
    with services.db.session() as session:
        for number, movie_id in enumerate(movie_ids):
            session.add(Title(id=movie_id, kind="movie", name=f"Movie {number}",
                              description="A film." * 20, rating_scheme="MPAA",
                              age_limit=number % 18))
        session.flush()
        _add_playable(session, movie_ids)
    for number in range(series):
        with services.db.session() as session:
            series_id = new_id()
            session.add(Title(id=series_id, kind="series", name=f"Series {number}"))
            session.flush()
            episode_ids = [new_id() for _ in range(episodes)]
            session.add_all(Title(id=e, kind="episode", name=f"S1E{n + 1}", series_id=series_id,
                                  season_number=1, episode_number=n + 1)
                            for n, e in enumerate(episode_ids))
            session.flush()
            _add_playable(session, episode_ids)
    token = services.signer.issue(["playback"], subject=user_id, device_id=device_id,
                                  ttl_s=3600)
    return movie_ids[0], token


HOME = """{
  titles(first: 20) { items { id name kind rating { ageLimit } artwork { kind }
                              assets { id playback } episodes(first: 5) { name episode } } }
  channels(first: 20) { items { name number entitled now { title end } next { title } } }
  entitlements { package validUntil }
}"""


def add_channels(services: Services, count: int) -> None:
    """Channels with a programme every 30 minutes from an hour ago to a day ahead."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    with services.db.session() as session:
        ids = [new_id() for _ in range(count)]
        session.add_all(Channel(id=cid, name=f"Channel {n}", number=n + 1, sources=["udp://x:1"],
                                ladder="auto", revision=1, epoch=0, status="live")
                        for n, cid in enumerate(ids))
        session.flush()
        session.add_all(Programme(id=new_id(), channel_id=cid,
                                  starts_at=start + timedelta(minutes=30 * k),
                                  ends_at=start + timedelta(minutes=30 * (k + 1)),
                                  title=f"Show {k}", categories=[], xmltv_channel="x")
                        for cid in ids for k in range(50))


def fetch(port: int, path: str, token: str) -> tuple[int, str, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers["ETag"], json.loads(response.read())


def _post(port: int, path: str, body: bytes, token: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def run(args: argparse.Namespace) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    warn_if_busy()
    redis, redis_url = start_redis(WORK / "redis", cpu=WRK_CPU)
    server: Process | None = None
    figures: dict[str, list[Figure]] = {}
    cpu_us: dict[str, list[float]] = {}
    try:
        env = {"STB_DATA_DIR": str(WORK / "data"), "STB_REDIS_URL": redis_url}
        if args.database_url:
            env["STB_DATABASE_URL"] = args.database_url
        settings = Settings(data_dir=WORK / "data", redis_url=redis_url,
                            database_url=args.database_url)
        migrations.upgrade(settings.resolved_database_url)
        services = build_services(settings)
        try:
            movie_id, token = set_up(services, args.titles, args.series, args.episodes)
            add_channels(services, args.channels)
        finally:
            services.close()
        server, port = start_granian(stb_env(env), WORK, name="granian", cpu=SERVER_CPU)
        page, detail = f"/v1/titles?limit={args.limit}", f"/v1/titles/{movie_id}"
        status, page_etag, body = fetch(port, page, token)
        items = body["items"]
        assert isinstance(items, list)
        if status != 200 or len(items) != args.limit:
            raise SystemExit(f"GET {page} answered {status} with {len(items)} titles:"
                             " the set-up is wrong")
        _, detail_etag, _ = fetch(port, detail, token)
        auth = {"Authorization": f"Bearer {token}"}
        home = WORK / "home.json"
        home.write_text(json.dumps({"query": HOME}))
        answer = _post(port, "/graphql", home.read_bytes(), token)
        if "errors" in answer or len(answer["data"]["titles"]["items"]) != 20:
            raise SystemExit(f"the GraphQL home query failed: {answer}")
        cases = {"page 200": (page, auth), "page 304": (page, {**auth,
                                                               "If-None-Match": page_etag}),
                 "detail 200": (detail, auth),
                 "detail 304": (detail, {**auth, "If-None-Match": detail_etag}),
                 "graphql home": ("/graphql", {**auth, "Content-Type": "application/json"})}
        other = OtherCpu()
        for round_ in range(args.rounds):
            order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
            for case in order:
                path, headers = cases[case]
                body = home if case == "graphql home" else None
                wrk(port, path, args.connections, 1.0, headers=headers, cpu=WRK_CPU,
                    body_file=body)  # warm-up
                before = process_tree_cpu_s(server.pid)
                figure = wrk(port, path, args.connections, args.duration, headers=headers,
                             cpu=WRK_CPU, body_file=body)
                spent = process_tree_cpu_s(server.pid) - before
                figures.setdefault(case, []).append(figure)
                cpu_us.setdefault(case, []).append(
                    spent / max(1.0, figure.requests_s * args.duration) * 1e6)
                print(f"  {case:10}  {figure.requests_s:7.0f} req/s  p50 {figure.p50_ms:7.2f}"
                      f" ms  p99 {figure.p99_ms:7.2f} ms  errors {figure.errors}", flush=True)
        cpu_note = other.report(process_tree_cpu_s(server.pid))
    finally:
        if server is not None:
            server.stop()
        redis.stop()

    print(f"\n{machine_facts()}")
    print(f"granian, 1 worker, pinned to CPU {SERVER_CPU}; wrk -t1 -c{args.connections} on CPU"
          f" {WRK_CPU}, {args.duration:g} s per figure, medians of {args.rounds} rounds;"
          f" {args.titles} movies + {args.series} series x {args.episodes} episodes, pages of"
          f" {args.limit}; database: {'PostgreSQL' if args.database_url else 'SQLite'}")
    rows = [(case, f"{median([x.requests_s for x in f]):.0f}",
             f"{median([x.p50_ms for x in f]):.2f}", f"{median([x.p99_ms for x in f]):.2f}",
             f"{median(cpu_us[case]):.0f}", sum(x.errors for x in f))
            for case, f in figures.items()]
    print_table(["case", "req/s", "p50 ms", "p99 ms", "CPU us/req", "errors"], rows)

    def rate(case: str) -> float:
        return median([x.requests_s for x in figures[case]])

    print(f"\n304/200: page {rate('page 304') / rate('page 200'):.2f}x req/s,"
          f" detail {rate('detail 304') / rate('detail 200'):.2f}x req/s")
    print(cpu_note)
    return 0 if all(x.errors == 0 for f in figures.values() for x in f) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--titles", type=int, default=2000, help="movies")
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--episodes", type=int, default=10, help="per series")
    parser.add_argument("--limit", type=int, default=50, help="titles per page")
    parser.add_argument("--channels", type=int, default=50,
                        help="live channels (the GraphQL home asks for 20)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per figure")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL instead of the embedded SQLite (an empty database)")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
