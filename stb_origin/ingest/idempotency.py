"""Idempotency-Key on uploads (draft-ietf-httpapi-idempotency-key-header).

A client whose upload lost its answer retries with the same key and gets the
first answer again instead of a second asset. Records live in Redis, per user,
for 24 h: first an in-flight marker, set with SET NX so that one of two
concurrent requests wins, on a short TTL a heartbeat renews (a server that dies
mid-upload lets go within seconds); then the answer. Only a success is kept: an
upload that failed may be retried with its key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import anyio
from redis import Redis
from redis.exceptions import RedisError
from starlette.responses import Response

from stb_origin.ingest.upload import Upload, unavailable
from stb_origin.services import Services
from stb_origin.web.errors import ApiError
from stb_origin.web.http import json_response

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
RECORD_TTL_S = 24 * 3600
IN_FLIGHT_TTL_S = 30
RENEW_EVERY_S = 10
PREFIX = "stb:idem:"
# The draft's form is a Structured Field string ("..." with \" and \\ escapes);
# a bare value is taken as it is, since many clients send one.
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_SF_ESCAPE = re.compile(r'\\(["\\])')
_PRINTABLE = re.compile(r"[\x20-\x7e]+")

# Compare-and-act on the marker, so a request whose claim lapsed and was taken
# by a retry never renews or deletes the retry's marker.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

T = TypeVar("T")
log = logging.getLogger("stb_origin.ingest")


def parse_key(values: list[str]) -> str | None:
    """The key of a request (None without the header), or a 400 naming the header."""
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(400, "invalid_idempotency_key", f"send one {HEADER} header, not several")
    value = values[0].strip(" \t")
    key: str | None = value
    if value.startswith('"'):  # then it must be a whole quoted string, not half of one
        quoted = _SF_STRING.fullmatch(value)
        key = _SF_ESCAPE.sub(r"\1", quoted.group(1)) if quoted else None
    if not key or len(key) > MAX_KEY_CHARS or not _PRINTABLE.fullmatch(key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"the {HEADER} header must be 1 to {MAX_KEY_CHARS} printable ASCII"
                       " characters, bare or as a quoted string")
    return key


def fingerprint(upload: Upload) -> str:
    """What makes two uploads the same request: the file's bytes and the form fields.

    Not the raw body: a client picks a new multipart boundary for every send, so
    an honest retry would never match."""
    return digest({"file_sha256": upload.sha256, "filename": upload.filename,
                   "title": upload.title, "packages": sorted(upload.packages)})


def digest(fields: dict[str, Any]) -> str:
    """A fingerprint of what makes a request the same (JSON-able fields)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    """What accepting an upload answers: kept as the Answer to its key."""

    status: int
    body: dict[str, Any]
    location: str | None = None


@dataclass(frozen=True)
class Answer:
    fingerprint: str
    status: int
    body: dict[str, Any]
    location: str


@dataclass(frozen=True)
class Claim:
    """This request holds the key: no other request may run with it."""

    redis_key: str
    marker: str


class InFlight(Exception):
    """Another request with this key has not finished yet."""


class IdempotencyStore:
    def __init__(self, redis: Redis, in_flight_ttl_s: int = IN_FLIGHT_TTL_S,
                 record_ttl_s: int = RECORD_TTL_S) -> None:
        self.redis = redis
        self.in_flight_ttl_s = in_flight_ttl_s
        self.record_ttl_s = record_ttl_s
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def claim(self, user: str, key: str) -> Claim | Answer:
        """Take the key, or the answer stored under it; InFlight while another holds it."""
        redis_key = record_key(user, key)
        marker = json.dumps({"in_flight": secrets.token_hex(16)})
        if self.redis.set(redis_key, marker, nx=True, ex=self.in_flight_ttl_s):
            return Claim(redis_key, marker)
        stored = self.redis.get(redis_key)
        record = json.loads(stored) if stored is not None else None
        # None: the holder let go between the two calls; the client's retry will find it free.
        if record is None or "in_flight" in record:
            raise InFlight
        return Answer(**record)

    def renew(self, claim: Claim) -> bool:
        return bool(self._renew(keys=[claim.redis_key],
                                args=[claim.marker, self.in_flight_ttl_s]))

    def release(self, claim: Claim) -> None:
        self._release(keys=[claim.redis_key], args=[claim.marker])

    def complete(self, claim: Claim, answer: Answer) -> None:
        self.redis.set(claim.redis_key, json.dumps(asdict(answer)), ex=self.record_ttl_s)


def record_key(user: str, key: str) -> str:
    # Hashed: both parts are the client's text, and neither may spell the other's.
    digest = hashlib.sha256(json.dumps([user, key]).encode()).hexdigest()
    return PREFIX + digest


async def while_held(store: IdempotencyStore, claim: Claim,
                     work: Callable[[], Awaitable[T]],
                     renew_every_s: float = RENEW_EVERY_S) -> T:
    """Run work while a heartbeat keeps the claim alive; if work fails, let the
    key go so that the client may retry with it. (A cancelled request, a server
    shutting down, leaves the marker to lapse with its TTL.)"""
    failure: Exception | None = None
    async with anyio.create_task_group() as heartbeat:
        heartbeat.start_soon(_keep_alive, store, claim, renew_every_s)
        try:
            result = await work()
        except Exception as exc:  # re-raised below, outside the task group that would wrap it
            failure = exc
        heartbeat.cancel_scope.cancel()
    if failure is not None:
        await anyio.to_thread.run_sync(store.release, claim)
        raise failure
    return result


async def _keep_alive(store: IdempotencyStore, claim: Claim, every_s: float) -> None:
    while True:
        await anyio.sleep(every_s)
        try:
            await anyio.to_thread.run_sync(store.renew, claim)
        except RedisError:
            # The upload goes on; if Redis stays away the marker lapses, and the
            # worst case is the one without the header: a retry makes a second asset.
            log.warning("could not renew an idempotency claim", exc_info=True)


async def answer_once(services: Services, subject: str, key: str,
                      receive: Callable[[], Awaitable[Upload]],
                      fingerprint_of: Callable[[Upload], str],
                      accept: Callable[[Upload], Awaitable[Accepted]]) -> Response:
    """An upload with an Idempotency-Key: the first one with the key and this
    user runs, the others get its answer (or 409 while it runs)."""
    store = IdempotencyStore(services.redis)
    try:
        held = await anyio.to_thread.run_sync(store.claim, subject, key)
    except InFlight:
        log.info("idempotency key in flight", extra={"idempotency_key": key})
        raise ApiError(409, "idempotency_key_in_flight",
                       f"an upload with this {HEADER} is still in progress;"
                       " retry once it has finished") from None
    except RedisError:
        raise unavailable() from None
    if isinstance(held, Answer):
        return await _replay(held, key, receive, fingerprint_of)
    claim = held

    async def first_time() -> Response:
        upload = await receive()
        fingerprint = fingerprint_of(upload)
        done = await accept(upload)
        answer = Answer(fingerprint, done.status, done.body, done.location or "")
        try:
            await anyio.to_thread.run_sync(store.complete, claim, answer)
        except RedisError:
            # The upload is accepted and queued: answering 503 would invite the very
            # duplicate the key is there to prevent.
            log.warning("the answer to an idempotent upload could not be kept",
                        extra={"id": done.body.get("id"), "idempotency_key": key})
        return json_response(done.body, status=done.status, location=done.location)

    return await while_held(store, claim, first_time)


async def _replay(answer: Answer, key: str, receive: Callable[[], Awaitable[Upload]],
                  fingerprint_of: Callable[[Upload], str]) -> Response:
    upload = await receive()
    upload.path.unlink(missing_ok=True)
    if fingerprint_of(upload) != answer.fingerprint:
        raise ApiError(422, "idempotency_key_reused",
                       f"this {HEADER} was used for a different upload in the"
                       " last 24 hours; send a new key with a new upload")
    log.info("idempotent upload replayed",
             extra={"id": answer.body.get("id"), "idempotency_key": key})
    return json_response(answer.body, status=answer.status, location=answer.location or None)
