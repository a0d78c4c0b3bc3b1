"""``stb-origin dev``: the whole system on embedded defaults, in one command.

Starts a private redis-server when none is configured or reachable, the HTTP
server, one worker and one channel runner as child processes, and on first
start ingests a sample clip so there is an encrypted stream to play at once.
A demo live channel is fed by an ffmpeg "encoder" (a test picture and a tone,
MPEG-TS over UDP on loopback) that dev also starts.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError

from stb_origin import devenv, proc
from stb_origin.live import urls as live_urls
from stb_origin.settings import Settings

if TYPE_CHECKING:
    from stb_origin.services import Services

SAMPLE_SECONDS = 12
DEV_BOX_CLIENT = "stb-box"
DEV_USER = "dev@example.com"
# The content team's dev sign-in for /console: an admin, so every page is open.
DEV_CONSOLE_USER = "console@example.com"
DEV_SAMPLE_BOX = "DEV-SAMPLE-BOX"  # the serial of the box the printed playback token is for
DEV_PACKAGE = "dev"
DEMO_CHANNEL = "Demo channel"
START_TIMEOUT_S = 30.0
# Ctrl-C, `kill` and a closed terminal all stop the whole tree; SIGKILL cannot be
# caught, so the children also die with this process (proc.spawn die_with_parent).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Stopping dev should take seconds: a job still running then is requeued and
# resumes on the next start (workers/worker.py).
DEV_WORKER_GRACE_S = 5.0


def run_dev(settings: Settings, host: str, port: int, sample: bool = True) -> int:
    # Absolute, so that children and the CLI's ./data from this checkout agree.
    settings = settings.with_(data_dir=settings.data_dir.resolve(),
                              worker_grace_s=min(settings.worker_grace_s, DEV_WORKER_GRACE_S))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    previous = {signum: signal.signal(signum, _request_stop) for signum in STOP_SIGNALS}
    try:
        redis_url = settings.redis_url
        if redis_url is None or not _redis_alive(redis_url):
            redis_child, redis_url = _start_redis(settings.data_dir)
            children.append(redis_child)
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        settings = settings.with_(redis_url=redis_url)
        if not os.environ.get("STB_PUBLIC_BASE_URL"):
            # The device flow sends people to public_base_url + /device: this server.
            # It is also the token issuer, hence devenv below.
            settings = settings.with_(public_base_url=base)
        if not os.environ.get("STB_GRAPHQL_INTROSPECTION"):
            # On a laptop the schema is there to be explored (GraphiQL, codegen).
            settings = settings.with_(graphql_introspection=True)
        if not os.environ.get("STB_WEBHOOKS_ALLOW_PRIVATE"):
            # Receivers under test run on this laptop, over plain HTTP.
            settings = settings.with_(webhooks_allow_private=True, webhooks_allow_http=True)
        env = {**os.environ, **settings.to_env()}
        me = [sys.executable, "-m", "stb_origin.cli"]
        logs = settings.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        children.append(proc.spawn([*me, "serve", "--host", host, "--port", str(port)], env=env,
                                   log_path=logs / "server.log", die_with_parent=True))
        children.append(proc.spawn([*me, "worker"], env=env, log_path=logs / "worker.log",
                                   die_with_parent=True))
        children.append(proc.spawn([*me, "channel-runner"], env=env,
                                   log_path=logs / "channel-runner.log", die_with_parent=True))
        demo_port = _demo_port(settings.data_dir)
        children.append(proc.spawn(demo_encoder_argv(demo_port), log_path=logs / "encoder.log",
                                   die_with_parent=True))
        devenv.write(settings)
        _wait_ready(base, children)
        _introduce(settings, base, sample, demo_port)
        print("\nRunning. Ctrl-C stops everything.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a child process exited; stopping", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _StopRequested):
        return 0
    finally:
        # A second signal must not cut the clean-up short and leave children behind.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        try:
            _stop(children)
            devenv.remove(settings.data_dir)
        finally:
            for signum, handler in previous.items():
                if handler is not None:  # None: not installed from Python, nothing to restore
                    signal.signal(signum, handler)


class _StopRequested(Exception):
    pass


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def _introduce(settings: Settings, base: str, sample: bool, demo_port: int) -> None:
    from stb_origin.services import build_services

    services = build_services(settings)
    try:
        write = services.signer.issue(["assets:write", "assets:read"], subject="dev",
                                      ttl_s=7 * 86400)
        marker = settings.data_dir / "sample-asset"
        clip = settings.data_dir / "sample.mp4"
        if sample and not marker.exists():
            proc.run(sample_clip_argv(clip, SAMPLE_SECONDS), timeout=120)
            from stb_origin.ingest.service import accept_source

            asset = accept_source(services, clip, ".mp4", "Sample clip", clip.stat().st_size)
            marker.write_text(asset["id"])
        sample_id = marker.read_text().strip() if marker.exists() else None
        password = _dev_user(services)
        # The playback token is what a signed-in box holds: the dev user's, bound to
        # a registered box of theirs, for an account entitled to the sample.
        channel_id = _demo_channel(services, demo_port)
        user_id, device_id = _dev_box(services, sample_id, channel_id)
        if sample_id is not None:
            _sample_title(services, sample_id)
        play = services.signer.issue(["playback"], subject=user_id, device_id=device_id,
                                     ttl_s=7 * 86400)
        video = shlex.quote(str(clip)) if clip.exists() else "/path/to/video.mp4"
        print(f"\nstb-origin is up at {base} (logs: {settings.data_dir / 'logs'})")
        print(f"  CLI:      {cli_command()} token --scope 'assets:write assets:read'")
        print(f"  upload:   curl -H 'Authorization: Bearer {write}' -F file=@{video}"
              f" -F packages={DEV_PACKAGE} {base}/v1/assets")
        print(f"  assets:   curl -H 'Authorization: Bearer {write}' {base}/v1/assets")
        if sample_id is not None:
            asset_id = sample_id
            _show_progress(services, asset_id)
            print(f"  sample:   {base}/hls/{asset_id}/master.m3u8")
            url = f"{base}/hls/{asset_id}/master.m3u8"
            print(f"  play it:  ffplay -headers 'Authorization: Bearer {play}' {url}")
            # For a machine without a screen: decode every frame, print nothing but errors.
            print(f"  decode:   ffmpeg -v error -headers 'Authorization: Bearer {play}' -i {url}"
                  " -f null -")
        live = f"{base}{live_urls.live_master(channel_id)}"
        if _wait_on_air(live):
            print(f"  live:     {live}")
            print(f"  watch it: ffplay -headers 'Authorization: Bearer {play}' {live}")
            print(f"  decode live: ffmpeg -v error -headers 'Authorization: Bearer {play}'"
                  f" -i {live} -t 10 -f null -")
        else:
            print(f"  live:     not on air yet; see {settings.data_dir / 'logs'}"
                  "/channel-runner.log")
        box = f"-H 'Authorization: Bearer {play}'"
        home = ('{"query": "{ titles { items { name kind } }'
                ' channels { items { name now { title } } } }"}')
        print(f"  browse:   curl {box} {base}/v1/titles")
        print(f"  graphql:  curl {box} -H 'Content-Type: application/json' -d '{home}'"
              f" {base}/graphql")
        print(f"  sync:     curl --compressed {box} {base}/v1/sync")
        print(f"  events:   curl -N {box} -H 'Accept: text/event-stream' {base}/v1/events")
        print(f"  playback token (7 days, {DEV_USER}'s box {DEV_SAMPLE_BOX}): {play}")
        introduce_device_flow(services, base, password)
        # Nothing glued to the password: it is copied with a double-click.
        print(f"  console:  {base}/console  sign in as {DEV_CONSOLE_USER}"
              f" with password {_dev_console_user(services)}  (an admin)")
    finally:
        services.close()


def _sample_title(services: Services, sample_id: str) -> None:
    """The sample in the catalog, once: what a box browses on a new install."""
    from stb_origin.catalog import titles

    with services.db.session() as session:
        if titles.titles_playing(session, sample_id):
            return
        title = titles.create_title(session, titles.TitleFields(
            kind="movie", name="Sample clip", description="The clip scripts/dev made.",
            given={"kind", "name", "description"}))
        titles.link_asset(session, title.id, sample_id, "main")


def _dev_user(services) -> str:  # type: ignore[no-untyped-def]
    """The user who approves dev boxes (made once); returns their password."""
    from stb_origin import secretfiles as secret_files
    from stb_origin.accounts import users

    password = secret_files.load_or_create(
        services.settings.secrets_dir / "dev-user-password",
        lambda: token_urlsafe(12).encode()).decode()
    with services.db.session() as session:
        if users.find_user(session, DEV_USER) is None:
            users.create_user(session, DEV_USER, name="Dev", password=password)
    return password


def _dev_console_user(services) -> str:  # type: ignore[no-untyped-def]
    """The console's dev admin (made once); returns their password."""
    from stb_origin import secretfiles as secret_files
    from stb_origin.accounts import users
    from stb_origin.accounts.models import Role

    password = secret_files.load_or_create(
        services.settings.secrets_dir / "dev-console-password",
        lambda: token_urlsafe(12).encode()).decode()
    with services.db.session() as session:
        if users.find_user(session, DEV_CONSOLE_USER) is None:
            users.create_user(session, DEV_CONSOLE_USER, name="Console (dev)",
                              role=Role.ADMIN, password=password)
    return password


def _dev_box(services, sample_id: str | None,  # type: ignore[no-untyped-def]
             channel_id: str) -> tuple[str, str]:
    """The dev user's registered box, and their account entitled to the sample and
    the demo channel through the package ``dev``; returns (user id, device id)."""
    from stb_origin.accounts import devices, entitlements, packages, users
    with services.db.session() as session:
        user = users.find_user(session, DEV_USER)
        assert user is not None  # _dev_user made it
        device = devices.register_device(
            session, user.account_id, DEV_SAMPLE_BOX, "Dev box", devices.Capabilities(),
            max_devices=services.settings.max_devices_per_account)
        # The package exists even without the sample: uploads name it (-F packages=dev).
        if packages.get_package(session, DEV_PACKAGE) is None:
            packages.create_package(session, DEV_PACKAGE, "Dev samples")
            entitlements.grant(session, user.account_id, DEV_PACKAGE)
        if sample_id is not None:
            packages.add_asset(session, DEV_PACKAGE, sample_id)  # once: it is idempotent
        packages.set_channel_packages(session, channel_id, [DEV_PACKAGE])
        return user.id, device.id


def _demo_port(data_dir: Path) -> int:
    """The loopback UDP port the demo encoder sends to: chosen once, kept in the data dir
    (the demo channel's source names it)."""
    marker = data_dir / "demo-channel-port"
    if not marker.exists():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            marker.write_text(str(sock.getsockname()[1]))
    return int(marker.read_text())


def demo_encoder_argv(port: int) -> list[str]:
    """A live encoder as ffmpeg: a moving test picture and a tone, in real time."""
    return [
        proc.require("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "50",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
        "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316",
    ]


def _demo_channel(services, port: int) -> str:  # type: ignore[no-untyped-def]
    """The demo channel (made once): the demo encoder on loopback, two rungs."""
    from sqlalchemy import select

    from stb_origin.assets.channels import Channel
    from stb_origin.db.types import new_id

    source = f"udp://127.0.0.1:{port}?timeout=5000000&overrun_nonfatal=1"
    with services.db.session() as session:
        found = session.scalar(select(Channel).where(Channel.name == DEMO_CHANNEL))
        if found is not None:
            return str(found.id)
        channel = Channel(id=new_id(), name=DEMO_CHANNEL, number=1, sources=[source],
                          ladder=[360, 234])
        session.add(channel)
        return channel.id


def _wait_on_air(url: str, timeout_s: float = 30.0) -> bool:
    """Whether the channel's master playlist is served within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def cli_command() -> str:
    """How to run ``stb-origin`` from a shell in this directory, as the README says:
    the command lives in the virtualenv's bin, which a new shell does not have on PATH."""
    if sys.prefix == sys.base_prefix:  # installed system-wide: already on PATH
        return "stb-origin"
    activate = Path(sys.prefix) / "bin" / "activate"
    with contextlib.suppress(ValueError):
        activate = activate.relative_to(Path.cwd())
    return f"source {shlex.quote(str(activate))} && stb-origin"


def introduce_device_flow(services, base: str,  # type: ignore[no-untyped-def]
                          password: str) -> None:
    """A public box client for the dev user to approve, and how to sign one in."""
    from stb_origin.oauth import clients

    with services.db.session() as session:
        clients.ensure_public_client(session, DEV_BOX_CLIENT, "Set-top box (dev)",
                                     ["playback", "account"])
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    print(f"  sign a box in (OAuth device flow, client {DEV_BOX_CLIENT}):")
    print(f"    1. curl -d client_id={DEV_BOX_CLIENT} --data-urlencode 'scope=playback account'"
          f" -d device_serial=DEV-BOX-1 --data-urlencode 'device_model=Dev box'"
          f" {base}/oauth/device_authorization")
    print(f"    2. open the verification_uri ({base}/device), sign in as {DEV_USER}"
          f" with password {password}  then enter the user_code and approve")
    print(f"    3. curl -d grant_type={grant} -d client_id={DEV_BOX_CLIENT}"
          f" -d device_code=DEVICE_CODE {base}/oauth/token")


def _show_progress(services, asset_id: str) -> None:  # type: ignore[no-untyped-def]
    from stb_origin.assets.records import Asset

    deadline = time.monotonic() + 600
    shown = -1
    while time.monotonic() < deadline:
        with services.db.session() as session:
            asset = session.get(Asset, asset_id)
            if asset is None:
                return
            status, progress, error = asset.status, asset.progress, asset.error_message
        if progress != shown:
            print(f"  sample asset {asset_id}: {status} {progress}%", flush=True)
            shown = progress
        if status in ("ready", "failed"):
            if error:
                print(f"  sample failed: {error}")
            return
        time.sleep(1)


def sample_clip_argv(path: Path, seconds: int) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", "-movflags", "+faststart", str(path),
    ]


def _start_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child = proc.spawn([
        proc.require("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(redis_dir.resolve()), "--appendonly", "yes", "--save", "",
        "--protected-mode", "yes",
    ], log_path=redis_dir / "redis.log", own_session=True, die_with_parent=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _redis_alive(url):
        if child.poll() is not None or time.monotonic() > deadline:
            raise OSError(f"redis-server did not start; see {redis_dir / 'redis.log'}")
        time.sleep(0.1)
    print(f"started a private redis-server at {url} (data in {redis_dir})")
    return child, url


def _redis_alive(url: str) -> bool:
    try:
        with Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
            return bool(client.ping())
    except RedisError:
        return False


def _wait_ready(base: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            raise OSError("a service exited during start-up (see data/logs/)")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise OSError(f"the server at {base} did not become ready")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop the newest first and wait for each, so Redis goes last."""
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
