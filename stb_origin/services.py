"""Composition: turn one Settings object into the parts each layer needs."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq import Queue

from stb_origin.auth import denylist
from stb_origin.auth.tokens import TokenSigner, load_signer
from stb_origin.db import Database
from stb_origin.envelope import Envelope, load_kek
from stb_origin.queues import connect_redis, pipeline_queue
from stb_origin.settings import Settings
from stb_origin.storage import Storage, open_storage
from stb_origin.storage.instrumented import InstrumentedStorage


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    redis: Redis
    queue: Queue
    envelope: Envelope
    signer: TokenSigner

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()


def build_services(settings: Settings) -> Services:
    if settings.redis_url is None:
        raise ValueError("STB_REDIS_URL is not set (`stb-origin dev` starts a Redis itself)")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The entry points (cli, asgi) bring the schema to head first, under a lock
    # (stb_origin.migrations); the shared layer only opens the database.
    db = Database(settings.resolved_database_url)
    redis = connect_redis(settings.redis_url)
    envelope = Envelope(load_kek(settings))
    signer = load_signer(settings, db, is_denied=lambda claims: denylist.is_denied(
        redis, claims.token_id, claims.device_id))
    return Services(
        settings=settings,
        db=db,
        # Storage latency is exported by the HTTP process (the serving path); in a
        # work horse these samples die with it, and the job's storage time shows
        # in the shared pipeline stage durations (download, publish) instead.
        storage=InstrumentedStorage(open_storage(settings)),
        redis=redis,
        queue=pipeline_queue(redis, settings),
        envelope=envelope,
        signer=signer,
    )
