"""Idempotency-Key on POST /v1/assets over real HTTP and a real Redis."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest

from stb_origin.assets.records import Asset
from stb_origin.ingest import idempotency
from stb_origin.ingest.idempotency import Claim, IdempotencyStore
from stb_origin.services import Services

# Enough for the sniffer (an MP4 "ftyp" box); nothing here runs the pipeline.
MP4 = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 64
OTHER_MP4 = MP4 + b"\x01"


@pytest.fixture
def writer(services: Services) -> str:
    return services.signer.issue(["assets:write", "assets:read"])


def _post(api: str, token: str, key: str | bytes | None = None, file: bytes = MP4,
          title: str = "news", **extra: object) -> httpx.Response:
    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers[idempotency.HEADER] = key
    return httpx.post(f"{api}/v1/assets", headers=headers, timeout=30,
                      files={"file": ("clip.mp4", file)}, data={"title": title},
                      **extra)  # type: ignore[arg-type]


def _assets(services: Services) -> int:
    with services.db.session() as session:
        return session.query(Asset).count()


def _records(services: Services) -> list[str]:
    return sorted(k.decode() for k in services.redis.scan_iter(f"{idempotency.PREFIX}*"))


def _uploads_left(services: Services) -> list[str]:
    uploads = services.settings.work_dir / "uploads"
    return [p.name for p in uploads.iterdir()] if uploads.exists() else []


def _same_answer(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]


def test_the_same_key_and_upload_twice_makes_one_asset(api, services, writer):
    first = _post(api, writer, "k-1")
    # httpx picks a new multipart boundary for every request: the retry's body
    # differs byte for byte, the upload does not.
    again = _post(api, writer, "k-1")
    _same_answer(first, again)
    assert _assets(services) == 1
    assert services.queue.job_ids == [f"pipeline-{first.json()['id']}-1"]
    assert list(services.storage.list_keys("sources/")) == [
        f"sources/{first.json()['id']}/source.mp4"]
    assert _uploads_left(services) == []


def test_a_quoted_key_is_the_same_key(api, services, writer):
    first = _post(api, writer, "k-2")
    _same_answer(first, _post(api, writer, '"k-2"'))
    assert _assets(services) == 1


def test_without_the_header_nothing_is_kept_and_every_upload_counts(api, services, writer):
    _post(api, writer)
    _post(api, writer)
    assert _assets(services) == 2 and _records(services) == []


@pytest.mark.parametrize("change", [
    {"file": OTHER_MP4},
    {"title": "weather"},
])
def test_the_same_key_with_another_upload_is_422(api, services, writer, change):
    first = _post(api, writer, "k-3")
    response = _post(api, writer, "k-3", **change)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in error["message"]
    assert _assets(services) == 1 and services.queue.job_ids == [f"pipeline-{first.json()['id']}-1"]
    assert _uploads_left(services) == []
    # The stored answer is untouched: the original upload still replays.
    _same_answer(first, _post(api, writer, "k-3"))


def test_different_users_may_use_the_same_key(api, services):
    alice = services.signer.issue(["assets:write"], subject="alice")
    bob = services.signer.issue(["assets:write"], subject="bob")
    for_alice, for_bob = _post(api, alice, "shared"), _post(api, bob, "shared")
    assert for_alice.status_code == for_bob.status_code == 202
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert _assets(services) == 2
    _same_answer(for_alice, _post(api, alice, "shared"))
    _same_answer(for_bob, _post(api, bob, "shared"))


def test_the_answer_is_kept_24_hours(api, services, writer):
    first = _post(api, writer, "k-4")
    [record] = _records(services)
    assert 24 * 3600 - 60 < services.redis.ttl(record) <= 24 * 3600
    # What Redis does when the TTL runs out: after it the key is free again.
    services.redis.delete(record)
    later = _post(api, writer, "k-4")
    assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
    assert _assets(services) == 2


@pytest.mark.parametrize("key", [
    "", "x" * 256, '"' + "x" * 256 + '"', "tab\there", b"caf\xe9", '""', '"a\\b"', '"open',
])
def test_a_malformed_key_is_400_naming_the_header(api, services, writer, key):
    response = _post(api, writer, key)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in error["message"]
    assert _assets(services) == 0 and _records(services) == [] and _uploads_left(services) == []


def test_two_idempotency_key_headers_are_400(api, services, writer):
    response = httpx.post(f"{api}/v1/assets", timeout=30, files={"file": ("a.mp4", MP4)},
                          headers=[("Authorization", f"Bearer {writer}"),
                                   (idempotency.HEADER, "a"), (idempotency.HEADER, "b")])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


def test_the_longest_key_is_accepted(api, services, writer):
    assert _post(api, writer, "k" * 255).status_code == 202


def _eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class _HeldBody:
    """A multipart body that stops after its first bytes until released, or fails."""

    def __init__(self, boundary: str = "HeLd") -> None:
        self.boundary = boundary
        self.release = threading.Event()
        self.fail = False

    def __iter__(self) -> Iterator[bytes]:
        yield (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\";"
               f" filename=\"clip.mp4\"\r\n\r\n").encode() + MP4[:1000]
        self.release.wait(30)
        if self.fail:
            raise RuntimeError("the client gives up mid-upload")
        yield MP4[1000:] + f"\r\n--{self.boundary}\r\nContent-Disposition: form-data;" \
            f" name=\"title\"\r\n\r\nnews\r\n--{self.boundary}--\r\n".encode()

    def send(self, api: str, token: str, key: str, into: list[httpx.Response]) -> threading.Thread:
        def run() -> None:
            # A body that fails is the client giving up: no answer to keep.
            with contextlib.suppress(RuntimeError):
                into.append(httpx.post(
                    f"{api}/v1/assets", content=iter(self), timeout=30,
                    headers={"Authorization": f"Bearer {token}", idempotency.HEADER: key,
                             "Content-Type": f"multipart/form-data; boundary={self.boundary}"}))

        thread = threading.Thread(target=run)
        thread.start()
        return thread


def test_a_request_while_the_first_is_in_flight_is_409(api, services, writer):
    held, answers = _HeldBody(), []
    thread = held.send(api, writer, "k-5", answers)
    try:
        _eventually(lambda: bool(_records(services)))
        [marker] = _records(services)
        # A server that dies here leaves the marker for seconds, not a day.
        assert 0 < services.redis.ttl(marker) <= idempotency.IN_FLIGHT_TTL_S
        second = _post(api, writer, "k-5")
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "idempotency_key_in_flight"
    finally:
        held.release.set()
        thread.join(30)
    [first] = answers
    assert first.status_code == 202
    assert _assets(services) == 1
    _same_answer(first, _post(api, writer, "k-5"))


def test_concurrent_requests_with_one_key_make_one_asset(api, services, writer):
    start, answers = threading.Barrier(2), []

    def send() -> None:
        start.wait(10)
        answers.append(_post(api, writer, "k-6"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert _assets(services) == 1 and len(services.queue.job_ids) == 1
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([202, 202], [202, 409])
    created = next(a for a in answers if a.status_code == 202)
    for answer in answers:
        if answer.status_code == 202:
            _same_answer(created, answer)


def test_a_refused_upload_lets_the_retry_run(api, services, writer):
    refused = _post(api, writer, "k-7", file=b"not a video at all\n" * 20)
    assert refused.status_code == 415
    assert _records(services) == []
    retry = _post(api, writer, "k-7")
    assert retry.status_code == 202 and _assets(services) == 1


def test_an_upload_given_up_mid_body_lets_the_retry_run(api, services, writer):
    held, answers = _HeldBody(), []
    thread = held.send(api, writer, "k-8", answers)
    _eventually(lambda: bool(_records(services)))
    held.fail = True
    held.release.set()
    thread.join(30)
    _eventually(lambda: not _records(services))
    assert _uploads_left(services) == []
    retry = _post(api, writer, "k-8")
    assert retry.status_code == 202 and _assets(services) == 1


# -- the store's claim, renewal and release --------------------------------------------


def test_a_claim_is_renewed_and_released_only_by_its_holder(services):
    store = IdempotencyStore(services.redis)
    claim = store.claim("alice", "k")
    assert isinstance(claim, Claim)
    with pytest.raises(idempotency.InFlight):
        store.claim("alice", "k")
    services.redis.expire(claim.redis_key, 5)
    assert store.renew(claim) and services.redis.ttl(claim.redis_key) > 5
    stranger = Claim(claim.redis_key, '{"in_flight": "someone else"}')
    assert not store.renew(stranger)
    store.release(stranger)
    assert services.redis.exists(claim.redis_key)
    store.release(claim)
    assert not services.redis.exists(claim.redis_key)


def test_while_held_renews_until_done_and_releases_on_failure(services):
    store = IdempotencyStore(services.redis)
    claim = store.claim("alice", "k")
    assert isinstance(claim, Claim)
    services.redis.expire(claim.redis_key, 5)

    async def until_renewed() -> str:
        with anyio.fail_after(10):
            while services.redis.ttl(claim.redis_key) <= 5:
                await anyio.sleep(0.01)
        return "done"

    assert anyio.run(idempotency.while_held, store, claim, until_renewed, 0.01) == "done"
    assert services.redis.exists(claim.redis_key), "kept: the caller stores the answer"

    async def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        anyio.run(idempotency.while_held, store, claim, fails, 0.01)
    assert not services.redis.exists(claim.redis_key)
