"""The ``stb-origin`` command: flags become settings, then library code runs."""

from __future__ import annotations

import argparse
import os
import sys

from stb_origin import devenv
from stb_origin.observability import logs
from stb_origin.settings import Settings, SettingsError, from_env

# In-flight requests get this long to finish when the server is asked to stop.
GRACEFUL_SHUTDOWN_S = 30


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin import migrations

    # Once, here, before the server (or granian's workers) opens it: a failed
    # upgrade stops the start with its message.
    migrations.upgrade(settings.resolved_database_url)
    if args.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        # The factory builds the app from the environment in each worker process.
        Granian("stb_origin.asgi:create", address=args.host, port=args.port,
                interface=Interfaces.ASGI, factory=True, workers=args.workers,
                log_access=False, workers_kill_timeout=GRACEFUL_SHUTDOWN_S).serve()
        return 0

    import uvicorn

    from stb_origin.app import for_server
    from stb_origin.services import build_services

    app = for_server(build_services(settings))
    # uvicorn's access log would print query strings, which may hold tokens.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin import migrations
    from stb_origin.workers.worker import run_worker

    # Before any job: the work horses open a database already at head.
    migrations.upgrade(settings.resolved_database_url)
    return run_worker(settings, burst=args.burst)


def _channel_runner(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin import migrations
    from stb_origin.live.runner import run_runner

    migrations.upgrade(settings.resolved_database_url)
    return run_runner(settings)


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin.auth.tokens import load_signer
    from stb_origin.migrations import open_database

    db = open_database(settings.resolved_database_url)
    try:
        signer = load_signer(settings, db)
        print(signer.issue(args.scope.split(), subject=args.subject, device_id=args.device,
                           ttl_s=args.ttl))
    finally:
        db.dispose()
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin import migrations

    url = settings.resolved_database_url
    if args.action == "upgrade":
        migrations.upgrade(url)
    print(migrations.describe(url))
    return 0


def _signing_key(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from stb_origin.auth import keyring
    from stb_origin.auth.tokens import LEEWAY_S, jwt_kek
    from stb_origin.envelope import Envelope
    from stb_origin.migrations import open_database

    db = open_database(settings.resolved_database_url)
    envelope = Envelope(jwt_kek(settings))
    now = int(time.time())
    with db.session() as session:
        if args.action == "rotate":
            # The keys signing now retire once the last token they sign has expired.
            lifetime = max(settings.access_token_ttl_s, settings.refresh_token_ttl_s) + LEEWAY_S
            keyring.ensure_signing_key(session, envelope, now)
            delay = (settings.jwt_key_activation_delay_s if args.activate_in is None
                     else args.activate_in)
            keyring.rotate(session, envelope, now, delay, lifetime)
        keys = keyring.list_keys(session, envelope)
        signing = keyring.KeyRing(tuple(keys)).signing_key(now)
        if not keys:
            print("no signing key yet: one is made when the first token is signed")
        for key in keys:
            state = ("signing" if key == signing else "published" if key.activates_at > now
                     else "verifying" if key.verifies_at(now) else "retired")
            print(f"{key.kid}  {state:9}  activates {_utc(key.activates_at)}"
                  f"  retires {_utc(key.retires_at) if key.retires_at else '-'}")
    db.dispose()
    return 0


def _key_audit(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from stb_origin.db.types import utcnow
    from stb_origin.drm import audit
    from stb_origin.migrations import open_database

    if args.older_than_days < 1:
        raise ValueError("--older-than-days must be at least 1")
    db = open_database(settings.resolved_database_url)
    before, removed = utcnow() - timedelta(days=args.older_than_days), 0
    try:
        while True:
            with db.session() as session:
                removed_now = audit.purge(session, before)
            removed += removed_now
            if removed_now == 0:
                break
    finally:
        db.dispose()
    print(f"removed {removed} key audit rows older than {args.older_than_days} days")
    return 0


def _utc(epoch: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin.accounts.errors import AlreadyExists
    from stb_origin.migrations import open_database
    from stb_origin.oauth import clients

    db = open_database(settings.resolved_database_url)
    try:
        with db.session() as session:
            if args.action == "list":
                for found in clients.list_clients(session):
                    print(f"{found.id}  {found.kind:12}  {found.scopes!r}  {found.name}")
                return 0
            client, secret = clients.create_client(session, args.name, args.kind, args.scope,
                                                   client_id=args.client_id)
    except AlreadyExists as exc:
        print(f"stb-origin: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(f"client_id: {client.id}")
    if secret is not None:
        # Only its hash is stored: this is the one time anyone sees it.
        print(f"client_secret: {secret}")
        print("(shown once: store it now)", file=sys.stderr)
    return 0


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from stb_origin.dev import run_dev

    return run_dev(settings, host=args.host, port=args.port, sample=not args.no_sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stb-origin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="the whole system on embedded defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--no-sample", action="store_true", help="skip the sample clip")
    dev.set_defaults(run=_dev)

    serve = commands.add_parser("serve", help="the HTTP apps: ingest, origin, keys, health")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn",
                       help="granian serves the origin several times faster"
                            " (bench/origin_vs_nginx.py)")
    serve.add_argument("--workers", type=int, default=1, help="granian worker processes")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="an RQ worker on the pipeline queue")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(run=_worker)

    runner = commands.add_parser(
        "channel-runner", help="keep live channels on air (each on one runner; leases in Redis)")
    runner.set_defaults(run=_channel_runner)

    token = commands.add_parser("token", help="print a signed access token")
    token.add_argument("--scope", required=True,
                       help="space-separated: assets:write assets:read playback account admin")
    token.add_argument("--device", default=None)
    token.add_argument("--subject", default="operator")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(run=_token)

    client = commands.add_parser("client", help="OAuth clients: boxes and third-party services")
    client_actions = client.add_subparsers(dest="action", required=True)
    add = client_actions.add_parser(
        "add", help="register a client; prints its id (and a confidential client's secret, once)")
    add.add_argument("name", help="shown to users when they approve a box")
    add.add_argument("--kind", choices=("public", "confidential"), required=True,
                     help="public: boxes (device grant, refresh); confidential: services"
                          " (client credentials, with a secret)")
    add.add_argument("--scope", required=True, help="space-separated scopes it may ask for")
    add.add_argument("--client-id", default=None, help="choose the id (default: generated)")
    client_actions.add_parser("list", help="the registered clients")
    client.set_defaults(run=_client)

    key_audit = commands.add_parser(
        "key-audit", help="keep the key audit bounded: run it daily (cron, a CronJob)")
    key_audit.add_argument("action", choices=("purge",))
    key_audit.add_argument("--older-than-days", type=int, required=True,
                           help="remove rows older than this (the retention your policy sets)")
    key_audit.set_defaults(run=_key_audit)

    db = commands.add_parser(
        "db", help="the database schema: upgrade it to this release's, or show where it is")
    db.add_argument("action", choices=("upgrade", "current"),
                    help="upgrade: migrate to head (every service also does this when it starts);"
                         " current: print the revision")
    db.set_defaults(run=_db)

    signing_key = commands.add_parser(
        "signing-key", help="list the token-signing keys, or rotate them without downtime")
    signing_key.add_argument("action", choices=("list", "rotate"))
    signing_key.add_argument(
        "--activate-in", type=int, default=None,
        help="seconds a new key is published before it signs"
             " (default STB_JWT_KEY_ACTIVATION_DELAY_S)")
    signing_key.set_defaults(run=_signing_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    try:
        # dev makes its own choices; every other command in the same checkout
        # follows those of a running dev (its Redis, its issuer: devenv.py).
        environ = os.environ if args.command == "dev" else devenv.with_dev_choices(os.environ)
        settings = from_env(environ)
    except SettingsError as exc:
        print(f"stb-origin: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(settings, args))
    except (ValueError, OSError) as exc:
        print(f"stb-origin: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
