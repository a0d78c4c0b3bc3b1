"""Key delivery: GET /keys with every check on, the server BEFORE the key-path change
against the server AFTER it, in one run.

BEFORE is commit BEFORE_REV (the last one before the streams limit joined the
key path's Lua script), unpacked with `git archive` into a temporary folder
and run from there with PYTHONPATH; AFTER is this working tree. Both run under
granian (as deployed, one worker) pinned to CPU 0 with `taskset`, over the same
data, each in its own database made by its own tree's migrations and set-up
(SQLite, the embedded default: a release refuses a schema newer than it
knows), and one private Redis, with one subscriber account entitled to one
asset through a package. wrk runs on CPU 1 and asks, with the box's device
token (the production path: signature, deny-list, user and device, entitlement
window, per-device rate limit, audit row, key unwrap), for one of the asset's keys:

    c32   requests/s and p99 at 32 connections: what one core serves
    c1    p50 at one connection: what one fetch costs

The rounds alternate which server goes first; the figures are medians. CPU
time per fetch (the server's process tree, from /proc) is printed too: it
moves least when other processes share the machine. The per-device rate limit
is raised for the run (STB_KEY_REQUESTS_PER_MINUTE) so wrk is not turned away;
it is still counted on every request.

    .venv/bin/python bench/key_delivery.py
    .venv/bin/python bench/key_delivery.py --duration 10 --rounds 3
    .venv/bin/python bench/key_delivery.py --database-url postgresql://postgres@127.0.0.1/bench \
        --before <a commit with the same migrations>
    .venv/bin/python bench/key_delivery.py --before 62638a4  # the key path's rebuild: its
        # BEFORE reads devices of an older schema, so run it from that era's tree

--database-url gives both servers one PostgreSQL database: BEFORE must then
know every migration AFTER has.

Needs: apt-get install -y wrk redis-server util-linux (taskset); granian (in
the project's venv); git (for BEFORE).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    OUT,
    OtherCpu,
    machine_facts,
    median,
    print_table,
    process_tree_cpu_s,
    warn_if_busy,
)
from servers import REPO, Process, start_granian, start_redis, stb_env
from wrk import Figure, wrk

from stb_origin import migrations
from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.assets.records import Asset, Status
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.services import Services, build_services
from stb_origin.settings import from_env

WORK = OUT / "key_delivery"
RATE_LIMIT_FOR_RUN = 10**9
# The last commit before the streams limit (drm.streams) joined the key path's one
# Redis round trip. (62638a4, before the key path was rebuilt, no longer reads the
# devices today's code writes.)
BEFORE_REV = "a6aa964"
SERVER_CPU, WRK_CPU = 0, 1


def set_up(services: Services, label: str) -> tuple[str, str, str, str]:
    """An entitled subscriber with one box; returns (path, device token, operator token,
    the key's hex for checking). Named after ``label``, so that both servers can be
    set up in one database (--database-url)."""
    asset_id = hashlib.sha256(label.encode()).hexdigest()[:32]
    key = generate_key()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title="bench", status=Status.READY.value,
                          source_key=f"sources/{asset_id}"))
        session.flush()
        keystore.store(session, asset_id, [key], services.envelope)
        user = users.create_user(session, f"bench-{label}@example.com")
        device = devices.register_device(session, user.account_id, f"SN-BENCH-{label}",
                                         "bench box", Capabilities(max_height=1080),
                                         max_devices=5)
        packages.create_package(session, f"bench-{label}", "Bench")
        packages.add_asset(session, f"bench-{label}", asset_id)
        entitlements.grant(session, user.account_id, f"bench-{label}",
                           valid_from=datetime.now(UTC) - timedelta(days=1))
        user_id, device_id = user.id, device.id
    device_token = services.signer.issue(["playback"], subject=user_id, device_id=device_id,
                                         ttl_s=3600)
    operator_token = services.signer.issue(["playback"], ttl_s=3600)
    return f"/keys/{asset_id}/{key.key_id}", device_token, operator_token, key.key.hex()


def fetch(port: int, path: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@dataclass
class Server:
    label: str
    process: Process
    port: int
    path: str
    token: str
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)


def unpack(rev: str, into: Path) -> Path:
    """The package and bench/ of ``rev``, as files under ``into``."""
    git = ["git", "-C", str(REPO)]
    subprocess.run([*git, "rev-parse", "--verify", f"{rev}^{{commit}}"], check=True,
                   capture_output=True)
    into.mkdir(parents=True)
    archive = subprocess.run([*git, "archive", rev, "stb_origin", "bench"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def imported_from(root: Path, env: dict[str, str]) -> Path:
    """Where a server run from ``root`` imports stb_origin from (it must be root)."""
    found = subprocess.run([sys.executable, "-c", "import stb_origin; print(stb_origin.__file__)"],
                           env={**env, "PYTHONPATH": f"{root}"}, cwd=root, check=True,
                           capture_output=True, text=True).stdout.strip()
    return Path(found).resolve().parent.parent


def set_up_here(label: str) -> None:
    """In a child whose PYTHONPATH is one server's tree: its database, migrated and set
    up by that tree's code; prints the path, token and key as JSON."""
    settings = from_env()
    migrations.upgrade(settings.resolved_database_url)
    services = build_services(settings)
    try:
        path, device_token, _operator, key_hex = set_up(services, label)
    finally:
        services.close()
    print(json.dumps({"path": path, "token": device_token, "key": key_hex}))


def set_up_for(root: Path, env: dict[str, str], label: str) -> dict[str, str]:
    found = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--set-up-here",
                            label],
                           env={**env, "PYTHONPATH": f"{root}"}, cwd=root, check=True,
                           capture_output=True, text=True).stdout
    fixture: dict[str, str] = json.loads(found.strip().splitlines()[-1])
    return fixture


def measure(server: Server, case: str, connections: int, duration: float) -> None:
    path = server.path
    headers = {"Authorization": f"Bearer {server.token}"}
    wrk(server.port, path, connections, 1.0, headers=headers, cpu=WRK_CPU)  # warm-up
    cpu_before = process_tree_cpu_s(server.process.pid)
    figure = wrk(server.port, path, connections, duration, headers=headers, cpu=WRK_CPU)
    cpu_s = process_tree_cpu_s(server.process.pid) - cpu_before
    server.figures.setdefault(case, []).append(figure)
    server.cpu_us.setdefault(case, []).append(
        cpu_s / max(1.0, figure.requests_s * duration) * 1e6)
    print(f"  {server.label:6} {case}  {figure.requests_s:8.0f} req/s  p50 {figure.p50_ms:6.2f}"
          f" ms  p99 {figure.p99_ms:6.2f} ms  errors {figure.errors}", flush=True)


def run(args: argparse.Namespace) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    warn_if_busy()
    before_root = unpack(args.before, WORK / "before")
    redis, redis_url = start_redis(WORK / "redis", cpu=WRK_CPU)
    servers: list[Server] = []
    try:
        env = {"STB_REDIS_URL": redis_url,
               "STB_KEY_REQUESTS_PER_MINUTE": str(RATE_LIMIT_FOR_RUN)}
        if args.database_url:
            env["STB_DATABASE_URL"] = args.database_url
        for label, root in (("before", before_root), ("after", REPO)):
            # One database, one data dir: its key-encryption key wraps the signing keys
            # both servers read.
            data = WORK / ("data" if args.database_url else f"data-{label}")
            server_env = stb_env({**env, "STB_DATA_DIR": str(data)})
            if imported_from(root, server_env) != root.resolve():
                raise SystemExit(f"the {label} server would not import its own tree {root}")
            fixture = set_up_for(root, server_env, label)
            process, port = start_granian(server_env, WORK, name=f"granian-{label}",
                                          root=root, cpu=SERVER_CPU)
            servers.append(Server(label, process, port, fixture["path"], fixture["token"]))
            status, body = fetch(port, fixture["path"], fixture["token"])
            if status != 200 or body.hex() != fixture["key"]:
                raise SystemExit(f"{label}: GET {fixture['path']} answered {status} with"
                                 f" {len(body)} bytes, not the asset's key: the set-up is wrong")
        other = OtherCpu()
        for round_ in range(args.rounds):
            order = servers if round_ % 2 == 0 else servers[::-1]
            for case, connections in (("c32", args.connections), ("c1", 1)):
                for server in order:
                    measure(server, case, connections, args.duration)
        cpu_note = other.report(sum(process_tree_cpu_s(s.process.pid) for s in servers))
    finally:
        for server in servers:
            server.process.stop()
        redis.stop()

    before, after = servers
    print(f"\n{machine_facts()}")
    print(f"granian, 1 worker, pinned to CPU {SERVER_CPU} (taskset); wrk -t1 on CPU {WRK_CPU},"
          f" {args.duration:g} s per figure, medians of {args.rounds} rounds; database:"
          f" {'PostgreSQL' if args.database_url else 'SQLite (embedded default)'};"
          f" before = {args.before}")
    rows = []
    for case, what in (("c32", f"{args.connections} connections"), ("c1", "1 connection")):
        for server in servers:
            f = server.figures[case]
            rows.append((f"{server.label}, {what}", f"{median([x.requests_s for x in f]):.0f}",
                         f"{median([x.p50_ms for x in f]):.2f}",
                         f"{median([x.p99_ms for x in f]):.2f}",
                         f"{median(server.cpu_us[case]):.0f}", sum(x.errors for x in f)))
    print_table(["server", "fetches/s", "p50 ms", "p99 ms", "CPU us/fetch", "errors"], rows)

    def ratio(case: str, pick: Callable[[Figure], float]) -> float:
        return (median([pick(x) for x in after.figures[case]])
                / median([pick(x) for x in before.figures[case]]))

    print(f"\nafter/before: {ratio('c32', lambda x: x.requests_s):.2f}x fetches/s at"
          f" {args.connections} connections, {ratio('c1', lambda x: x.requests_s):.2f}x at one;"
          f" p50 at one connection {ratio('c1', lambda x: x.p50_ms):.2f}x; CPU per fetch"
          f" {median(after.cpu_us['c32']) / median(before.cpu_us['c32']):.2f}x")
    print(cpu_note)
    return 0 if all(x.errors == 0 for s in servers for f in s.figures.values() for x in f) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per figure")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--before", default=BEFORE_REV,
                        help="the commit to measure as BEFORE (default: %(default)s)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL instead of the embedded SQLite (an empty database)")
    parser.add_argument("--set-up-here", metavar="LABEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.set_up_here:
        set_up_here(args.set_up_here)
        return 0
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
