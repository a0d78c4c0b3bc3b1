"""Key delivery: latency and requests/s of GET /keys with every check on.

`stb-origin serve --server granian` (as deployed, one worker) on the embedded
defaults (SQLite, the folder backend; --database-url for PostgreSQL) and a
private Redis, with one subscriber account entitled to one asset through a
package, and wrk on loopback asking for one of the asset's keys with:

    healthz        no token, no database: the server's floor on this machine
    keys/operator  an operator token: signature, deny-list, key unwrap
    keys/device    a box's device token, the production path: signature and
                   deny-list, the user and device (active, in the account), the
                   entitlement, the per-device rate limit, the audit row, and
                   the key unwrapped from the database

The per-device rate limit is raised for the run (STB_KEY_REQUESTS_PER_MINUTE)
so that wrk is not turned away; it is still counted on every request. Ratios
are to healthz in the same run.

    .venv/bin/python bench/key_delivery.py
    .venv/bin/python bench/key_delivery.py --duration 10 --connections 64
    .venv/bin/python bench/key_delivery.py --database-url postgresql://postgres@127.0.0.1/bench

Needs: apt-get install -y wrk redis-server; granian (in the project's venv).
"""

from __future__ import annotations

import argparse
import shutil
import urllib.request
from datetime import UTC, datetime, timedelta

from common import OUT, OtherCpu, machine_facts, print_table, process_tree_cpu_s, warn_if_busy
from servers import start_granian, start_redis, stb_env
from wrk import Figure, wrk

from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.assets.records import Asset, Status
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings

WORK = OUT / "key_delivery"
RATE_LIMIT_FOR_RUN = 10**9


def set_up(services: Services) -> tuple[str, str, str, str]:
    """An entitled subscriber with one box; returns (path, device token, operator token,
    the key's hex for checking)."""
    asset_id = "b" * 32
    key = generate_key()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title="bench", status=Status.READY.value,
                          source_key=f"sources/{asset_id}"))
        session.flush()
        keystore.store(session, asset_id, [key], services.envelope)
        user = users.create_user(session, "bench@example.com")
        device = devices.register_device(session, user.account_id, "SN-BENCH-1", "bench box",
                                         Capabilities(max_height=1080), max_devices=5)
        packages.create_package(session, "bench", "Bench")
        packages.add_asset(session, "bench", asset_id)
        entitlements.grant(session, user.account_id, "bench",
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


def run(args: argparse.Namespace) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    warn_if_busy()
    redis, redis_url = start_redis(WORK / "redis")
    try:
        env = {"STB_DATA_DIR": str(WORK / "data"), "STB_REDIS_URL": redis_url,
               "STB_KEY_REQUESTS_PER_MINUTE": str(RATE_LIMIT_FOR_RUN)}
        if args.database_url:
            env["STB_DATABASE_URL"] = args.database_url
        settings = Settings(data_dir=WORK / "data", redis_url=redis_url,
                            database_url=args.database_url)
        services = build_services(settings)
        try:
            path, device_token, operator_token, key_hex = set_up(services)
        finally:
            services.close()
        server, port = start_granian(stb_env(env), WORK)
        try:
            for token in (device_token, operator_token):
                status, body = fetch(port, path, token)
                if status != 200 or body.hex() != key_hex:
                    raise SystemExit(f"GET {path} answered {status} with {len(body)} bytes,"
                                     " not the asset's key: the set-up is wrong")
            cases = [("healthz", "/healthz", None), ("keys/operator", path, operator_token),
                     ("keys/device", path, device_token)]
            figures: dict[str, Figure] = {}
            other, server_cpu = OtherCpu(), process_tree_cpu_s(server.pid)
            for name, target, token in cases:
                headers = {"Authorization": f"Bearer {token}"} if token else None
                wrk(port, target, args.connections, 1.0, headers=headers)  # warm-up
                figures[name] = wrk(port, target, args.connections, args.duration,
                                    headers=headers)
                print(f"  {name:14} {figures[name].requests_s:8.0f} req/s"
                      f"  p50 {figures[name].p50_ms:6.2f} ms  p99 {figures[name].p99_ms:6.2f} ms",
                      flush=True)
            cpu_note = other.report(process_tree_cpu_s(server.pid) - server_cpu)
        finally:
            server.stop()
    finally:
        redis.stop()

    floor = figures["healthz"].requests_s
    print(f"\n{machine_facts()}")
    print(f"granian, 1 worker; wrk -t1 -c{args.connections} -d{args.duration:g}s;"
          f" database: {'PostgreSQL' if args.database_url else 'SQLite (embedded default)'}")
    print_table(["request", "req/s", "vs healthz", "p50 ms", "p99 ms", "errors"], [
        (name, f"{f.requests_s:.0f}", f"{f.requests_s / floor:.2f}x", f"{f.p50_ms:.2f}",
         f"{f.p99_ms:.2f}", f.errors) for name, f in figures.items()])
    print(cpu_note)
    return 0 if all(f.errors == 0 for f in figures.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per figure")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL instead of the embedded SQLite (an empty database)")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
