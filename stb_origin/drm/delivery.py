"""One key fetch, every check on, with one Redis round trip and no thread hop while
the cached copies are current.

What a fetch does, in order:

1. the token's signature, times and scope (a token seen before is remembered
   by the signer, so this is a dictionary lookup);
2. ONE Redis command (``drm.checks``, batched with the other fetches in
   flight): the deny-list (the token and its device), the device's rate-limit
   count, the change stamps (``db.stamps``) of the asset and, once known,
   of the caller's account, and then too the device's stream slot
   (``drm.streams``: at most STB_MAX_STREAMS_PER_ACCOUNT boxes play at once);
3. the rules of ``drm.access.decide`` over in-process copies of the user, the
   device, the account's entitlement windows and the packages holding the
   asset, each kept under the stamp it was loaded with — a copy whose stamp
   differs from the one just read is reloaded (SQLAlchemy Core, no ORM) first;
4. the wrapped key from the same asset copy, unwrapped for this answer;
5. the audit row handed to ``drm.auditwriter`` (written in batches by its thread).

The event loop runs every step, and awaits step 2, while nothing needs the
database. What does hops to a worker thread: step 1 for a token not seen
before (or when the signing keys are due to be read again, once a minute),
steps 3 to 5 when a copy is missing or stale. A thread hop costs more than all
the checks themselves. The first fetch of a user in a process, whose account
is learnt in step 3, takes its stream slot there, in a command of its own.

Why revocation still takes effect on every process at once: nothing is
invalidated by message. Every fetch reads the deny-list and the stamps afresh
in its single round trip, and whoever revokes a device, grants or ends an
entitlement, changes a package's assets or deletes an asset renews the stamp
after committing (``db.stamps.renew``), before answering. So a process that
missed nothing and a process that was asleep behave alike: the next fetch on
either sees the new stamp and rereads the database. A revoked device is caught
twice over (deny-list entry and account stamp). Entitlement windows are kept
whole and judged at each fetch's time, so an entitlement expiring needs no
invalidation at all. Copies also expire after ``COPY_TTL_S``: the bound for a
change written straight into the database, which renews no stamp.

With Redis unreachable, the deny-list cannot be read and the fetch is refused
with 503, as before this path existed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from stb_origin import ratelimit, scopes
from stb_origin.accounts.caller import OPERATOR
from stb_origin.accounts.devices import DeviceRow, read_device
from stb_origin.accounts.entitlements import Window, read_windows
from stb_origin.accounts.packages import read_packages_holding
from stb_origin.accounts.users import UserRow, read_user
from stb_origin.auth import denylist
from stb_origin.auth.tokens import Claims, TokenSigner
from stb_origin.db import stamps
from stb_origin.db.stamps import StampedCache
from stb_origin.db.types import ID, utcnow
from stb_origin.drm import audit, keys, keystore, streams
from stb_origin.drm.access import PlaybackRefused, check_claims, decide, needs_touch
from stb_origin.drm.auditwriter import AuditWriter
from stb_origin.drm.checks import Answer, Checks, Stream
from stb_origin.drm.keys import KEY_ID
from stb_origin.drm.streams import NO_LIMIT, StreamLimit
from stb_origin.envelope import Envelope
from stb_origin.services import Services
from stb_origin.web.bearer import check_token, invalid_token, revocations_unavailable

RATE_WINDOW_S = 60
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
TOO_MANY_STREAMS = "too_many_streams"
COPY_TTL_S = 60.0
MAX_COPIES = 200_000



@dataclass(frozen=True)
class Origin:
    """Where a key request came from, as the audit keeps it."""

    client_address: str | None
    forwarded_for: str | None
    request_id: str | None


@dataclass(frozen=True)
class Outcome:
    name: str  # audit.DELIVERED, a Refusal, NOT_FOUND, RATE_LIMITED or TOO_MANY_STREAMS
    claims: Claims
    key: bytes | None = None
    refusal: PlaybackRefused | None = None
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class _ViewerCopy:
    user: UserRow | None  # None: no such user (the operator never gets here)
    device: DeviceRow | None
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class _AssetCopy:
    packages: frozenset[str]
    # key id -> wrapped key, filled as keys are asked for; never a miss (a key
    # stored later must be found without waiting for a new stamp).
    wrapped: dict[str, bytes] = field(default_factory=dict)


class KeyDelivery:
    def __init__(self, signer: TokenSigner, redis_url: str, redis: Redis, engine: Engine,
                 envelope: Envelope, audit_writer: AuditWriter, *,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = utcnow, copy_ttl_s: float = COPY_TTL_S,
                 streams: StreamLimit = NO_LIMIT) -> None:
        self._signer = signer
        self.redis = redis  # for the loads in a worker thread
        self.checks = Checks(redis_url, RATE_WINDOW_S + 1, streams)
        self.streams = streams
        self._engine = engine
        self._envelope = envelope
        self.audit = audit_writer
        self.now = now
        self._viewers: StampedCache[tuple[str, str | None], _ViewerCopy] = StampedCache(
            copy_ttl_s, MAX_COPIES, clock)
        self._assets: StampedCache[str, _AssetCopy] = StampedCache(copy_ttl_s, MAX_COPIES, clock)
        # A user's account never changes: learnt once, so that the account's stamp
        # can ride in the first round trip of every later fetch.
        self._account_of: dict[str, str] = {}
        # device id -> when this process last had it recorded as seen
        self._seen: dict[str, datetime] = {}

    @classmethod
    def for_services(cls, services: Services) -> KeyDelivery:
        """One per HTTP process: its copies and its audit writer live with the app."""
        engine = services.db.engine
        url = services.settings.redis_url
        assert url is not None, "build_services always sets a Redis URL"
        settings = services.settings
        return cls(services.signer, url, services.redis, engine, services.envelope,
                   AuditWriter(engine), streams=StreamLimit(settings.max_streams_per_account,
                                                            settings.stream_idle_s))

    async def fetch(self, token: str, asset_id: str, key_id: str, origin: Origin,
                    limit: int) -> Outcome:
        """The outcome of one key request (ApiError for a token refused outright)."""
        if self._signer.verifies_in_memory(token):
            claims = check_token(self._signer, token, (scopes.PLAYBACK,), check_denied=False)
        else:  # a token seen first, or the signing keys due to be read again
            claims = await anyio.to_thread.run_sync(
                lambda: check_token(self._signer, token, (scopes.PLAYBACK,), check_denied=False))
        now = self.now()
        account_id = self._account_of.get(claims.subject)
        found = await self._ask_redis(claims, asset_id, account_id, now.timestamp())
        count, asset_stamp, account_stamp = found.count, found.asset_stamp, found.account_stamp
        if found.denied:
            raise invalid_token("token revoked")
        wanted = _wanted(claims, asset_id, key_id, origin)
        wait = ratelimit.wait_s(count, limit, RATE_WINDOW_S, now.timestamp())
        if wait is not None:
            # A box over its limit is audited once a window, not once a request:
            # a flood must not turn into a flood of audit rows.
            if count == limit + 1:
                self._audit(wanted, RATE_LIMITED, now)
            return Outcome(RATE_LIMITED, claims, retry_after_s=wait)
        if not found.plays:
            self._audit(wanted, TOO_MANY_STREAMS, now, account_id)
            return Outcome(TOO_MANY_STREAMS, claims)
        if self._current(claims, asset_id, key_id, account_id, account_stamp, asset_stamp):
            return self._answer(claims, asset_id, key_id, account_id, account_stamp,
                                asset_stamp, wanted, now)
        return await anyio.to_thread.run_sync(
            self._answer, claims, asset_id, key_id, account_id, account_stamp, asset_stamp,
            wanted, now)

    def _answer(self, claims: Claims, asset_id: str, key_id: str, account_id: str | None,
                account_stamp: bytes | None, asset_stamp: bytes | None,
                wanted: audit.KeyRequest, now: datetime) -> Outcome:
        """Steps 3 to 5. Blocking unless ``_current`` said every copy is at hand."""
        try:
            check_claims(claims, asset_id)
            copy = self._viewer(claims, account_id, account_stamp)
            packages = self._asset(asset_id, asset_stamp).packages
            viewer = decide(claims, asset_id, copy.user, copy.device, lambda _account: any(
                w.package in packages and w.covers(now) for w in copy.windows))
        except PlaybackRefused as exc:
            self._audit(wanted, exc.reason, now, exc.account_id)
            return Outcome(exc.reason, claims, refusal=exc)
        if copy.device is not None and claims.device_id is not None:
            if account_id is None and not self._take_stream(viewer.account_id,
                                                            claims.device_id, now):
                self._audit(wanted, TOO_MANY_STREAMS, now, viewer.account_id)
                return Outcome(TOO_MANY_STREAMS, claims)
            self._note_seen(claims.device_id, copy.device, now)
        key = self._key(asset_id, key_id, asset_stamp)
        outcome = audit.DELIVERED if key is not None else NOT_FOUND
        self._audit(wanted, outcome, now, viewer.account_id)
        return Outcome(outcome, claims, key=key)

    async def aclose(self) -> None:
        await self.checks.aclose()
        await anyio.to_thread.run_sync(self.audit.close)

    # --- the steps ----------------------------------------------------------------

    async def _ask_redis(self, claims: Claims, asset_id: str, account_id: str | None,
                         at: float) -> Answer:
        # Boxes of a known account take a stream slot; the first fetch of a user
        # here takes it in step 3, once the account is known (_take_stream).
        stream = (Stream(account_id, claims.device_id, at)
                  if account_id is not None and claims.device_id is not None else None)
        try:
            return await self.checks.ask(
                denylist.names(claims.token_id, claims.device_id),
                ratelimit.window_name(f"keys:{_rate_key(claims)}", RATE_WINDOW_S, at),
                stamps.asset(asset_id),
                stamps.account(account_id) if account_id is not None else None, stream)
        except RedisError:
            raise revocations_unavailable() from None

    def _take_stream(self, account_id: str | None, device_id: str, now: datetime) -> bool:
        """The stream slot of a user's first fetch here: in a worker thread."""
        if account_id is None or not self.streams.on:
            return True
        try:
            return streams.take(self.redis, self.streams, account_id, device_id,
                                now.timestamp())
        except RedisError:
            raise revocations_unavailable() from None

    def _current(self, claims: Claims, asset_id: str, key_id: str, account_id: str | None,
                 account_stamp: bytes | None, asset_stamp: bytes | None) -> bool:
        """Whether steps 3 to 5 can be answered from the copies, without the database."""
        if claims.subject != OPERATOR and (
                account_id is None
                or self._viewers.get((claims.subject, claims.device_id), account_stamp) is None):
            return False
        if not ID.fullmatch(asset_id):
            return True  # in no package, has no keys: nothing to read
        copy = self._assets.get(asset_id, asset_stamp)
        return copy is not None and (key_id in copy.wrapped or not KEY_ID.fullmatch(key_id))

    def _viewer(self, claims: Claims, account_id: str | None,
                stamp: bytes | None) -> _ViewerCopy:
        if claims.subject == OPERATOR:
            # No user, account or entitlement to check; the key path has no use for
            # the capabilities of a device an operator token may name.
            return _ViewerCopy(None, None, ())
        cache_key = (claims.subject, claims.device_id)
        if account_id is not None:
            copy = self._viewers.get(cache_key, stamp)
            if copy is not None:
                return copy
        else:
            # First fetch for this user here: its account (and so the stamp to read
            # before loading the rest) is not known yet.
            with self._engine.connect() as conn:
                user = read_user(conn, claims.subject)
            if user is None:
                return _ViewerCopy(None, None, ())  # refused; not kept
            account_id = user.account_id
            stamp = stamps.read(self.redis, stamps.account(account_id))
        # A new transaction, begun after the stamp was read: rows older than the
        # stamp would be kept as current (SQLite reads from one snapshot).
        with self._engine.connect() as conn:
            user = read_user(conn, claims.subject)
            device = read_device(conn, claims.device_id) if claims.device_id else None
            windows = read_windows(conn, user.account_id) if user is not None else ()
        copy = _ViewerCopy(user, device, windows)
        if user is not None:
            self._account_of[claims.subject] = user.account_id
            if len(self._account_of) >= MAX_COPIES:
                self._account_of.clear()
            self._viewers.put(cache_key, copy, stamp)
        return copy

    def _asset(self, asset_id: str, stamp: bytes | None) -> _AssetCopy:
        if not ID.fullmatch(asset_id):
            return _AssetCopy(frozenset())  # in no package, has no keys
        copy = self._assets.get(asset_id, stamp)
        if copy is None:
            with self._engine.connect() as conn:
                copy = _AssetCopy(read_packages_holding(conn, asset_id))
            self._assets.put(asset_id, copy, stamp)
        return copy

    def _key(self, asset_id: str, key_id: str, stamp: bytes | None) -> bytes | None:
        if not (ID.fullmatch(asset_id) and KEY_ID.fullmatch(key_id)):
            return None
        copy = self._asset(asset_id, stamp)
        wrapped = copy.wrapped.get(key_id)
        if wrapped is None:
            with self._engine.connect() as conn:
                wrapped = keystore.read_wrapped(conn, asset_id, key_id)
            if wrapped is None:
                return None
            copy.wrapped[key_id] = wrapped
        return keys.unwrap(self._envelope, asset_id, key_id, wrapped)

    def _note_seen(self, device_id: str, device: DeviceRow, now: datetime) -> None:
        if needs_touch(self._seen.get(device_id, device.last_seen_at), now):
            if len(self._seen) >= MAX_COPIES:
                self._seen.clear()
            self._seen[device_id] = now
            self.audit.seen(device_id, now)

    def _audit(self, wanted: audit.KeyRequest, outcome: str, at: datetime,
               account_id: str | None = None) -> None:
        self.audit.record(audit.row(wanted, outcome, at, account_id))


def _rate_key(claims: Claims) -> str:
    # Per device; a token bound to none (the operator, an admin) counts per subject.
    return f"device:{claims.device_id}" if claims.device_id else f"subject:{claims.subject}"


def _wanted(claims: Claims, asset_id: str, key_id: str, origin: Origin) -> audit.KeyRequest:
    return audit.KeyRequest(
        subject=claims.subject, device_id=claims.device_id, client_id=claims.client_id,
        # Path values as sent, cut to the columns: a malformed id is audited too.
        asset_id=asset_id[:32], key_id=key_id[:64], client_address=origin.client_address,
        forwarded_for=origin.forwarded_for, request_id=origin.request_id)
