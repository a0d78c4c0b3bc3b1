"""Shared fixtures: real Redis, real databases, settings built directly."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hypothesis
import pytest
from redis import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette

from stb_origin import migrations
from stb_origin.app import create_app
from stb_origin.db import Database
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from stb_origin.workers import jobs
from tests.support.http import run_server
from tests.support.s3server import MotoMissing, MotoServer, start_moto
from tests.support.workers import kill_tree

# Properties are about answers, not speed: hypothesis' per-example time limit
# only made a busy machine fail them.
hypothesis.settings.register_profile("stb", deadline=None)
hypothesis.settings.load_profile("stb")



def _redis_url() -> str:
    """The test Redis database; under pytest-xdist each worker ("gw0", "gw1", ...)
    takes its own, counting down from the one configured, as tests flush it."""
    url = os.environ.get("STB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db) - int(worker.removeprefix('gw'))}"


REDIS_URL = _redis_url()
POSTGRES_URL = os.environ.get("STB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_tools(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            package = {"ffprobe": "ffmpeg", "moto_server": '"moto[server]" (pip)'}.get(tool, tool)
            pytest.fail(f"{tool} is required for this test: install {package}", pytrace=False)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file the migrations brought to head, once a session: tests get copies."""
    path = tmp_path_factory.mktemp("migrated") / "stb.db"
    migrations.upgrade(f"sqlite:///{path}")
    # Copying the file alone is only whole once the last connection has folded the WAL in.
    assert not path.with_name("stb.db-wal").exists()
    return path


def copy_migrated(template: Path, to: Path) -> str:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, to)
    return f"sqlite:///{to}"


@pytest.fixture
def db(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    """An empty SQLite database with the whole schema (tests/accounts also run PostgreSQL)."""
    database = Database(copy_migrated(migrated_sqlite, tmp_path / "stb.db"))
    yield database
    database.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError:
        pytest.fail(f"a Redis server is required at {REDIS_URL}: apt-get install -y redis-server"
                    " && redis-server --daemonize yes", pytrace=False)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, migrated_sqlite: Path) -> Settings:
    """Settings over a data dir whose database the migrations made, as `stb-origin serve`
    leaves it before it builds its services."""
    copy_migrated(migrated_sqlite, tmp_path / "data" / "stb.db")
    return Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        segment_seconds=2.0,
        key_rotation_segments=2,
        x264_preset="ultrafast",
        x265_preset="ultrafast",
        queue_name=f"pipeline-{secrets.token_hex(4)}",
        # Tests of the reconciler run its passes themselves (tests/test_reconciler.py).
        reconcile_interval_s=0,
    )


@contextmanager
def _postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template`` if given), dropped afterwards."""
    import psycopg

    name = f"stb_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.fail(f"PostgreSQL is required at {POSTGRES_URL}: apt-get install -y postgresql",
                    pytrace=False)
    with admin:
        copy = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with _postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """The name of a PostgreSQL database the migrations brought to head, once a session."""
    with _postgres_database() as url:
        migrations.upgrade(url)
        yield url.rsplit("/", 1)[1]


ENGINES = ["sqlite", "postgresql"]


def on_engine(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """``settings`` over the engine the test is parametrised with (``ENGINES``)."""
    if request.param == "sqlite":
        return settings
    url: str = request.getfixturevalue("migrated_postgres_url")
    return dataclasses.replace(settings, database_url=url)


@pytest.fixture(params=ENGINES)
def either_db(request: pytest.FixtureRequest, tmp_path: Path,
              migrated_sqlite: Path) -> Iterator[Database]:
    """A database with the whole schema, on each engine in turn."""
    if request.param == "sqlite":
        url = copy_migrated(migrated_sqlite, tmp_path / "stb.db")
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def migrated_postgres_url(migrated_postgres: str) -> Iterator[str]:
    """A PostgreSQL database with the whole schema: a server-side copy of the migrated one."""
    with _postgres_database(template=migrated_postgres) as url:
        yield url


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = start_moto()
    except MotoMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def s3_env(moto_server: MotoServer) -> dict[str, str]:
    """Environment for a stack on a fresh bucket of the real S3 server."""
    fields = moto_server.settings_fields()
    return {
        "STB_STORAGE_URL": f"s3://stb-{secrets.token_hex(4)}",
        "STB_S3_ENDPOINT": fields["s3_endpoint"],
        "STB_S3_ACCESS_KEY": fields["s3_access_key"],
        "STB_S3_SECRET_KEY": fields["s3_secret_key"],
        "STB_S3_REGION": fields["s3_region"],
        "STB_S3_SECURE": "false",
    }


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def app(services: Services) -> Starlette:
    """The real HTTP app over `services` (``app.state.key_delivery`` is its key path)."""
    return create_app(services)


@pytest.fixture
def api(app: Starlette) -> Iterator[str]:
    """Base URL of the real HTTP app (uvicorn on a free port) over `services`."""
    with run_server(app) as base_url:
        yield base_url


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes a test starts, killed (with what they started) after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill_tree(process)


@pytest.fixture
def worker_env(services: Services) -> Iterator[None]:
    """The job functions run with the test's settings, as run_worker sets them up."""
    jobs.use_settings(services.settings)
    yield
    jobs.use_settings(None)
