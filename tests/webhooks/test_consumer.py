"""Events become deliveries exactly once: across consumers at once, and when a
consumer is killed between its commit and its acknowledgement (or before its commit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from stb_origin import eventlog
from stb_origin.db.types import new_id, utcnow
from stb_origin.services import Services
from stb_origin.webhooks import deliveries, subscriptions
from stb_origin.webhooks.consumer import GROUP, Consumer
from stb_origin.webhooks.models import Attempt, Delivery

EVENTS = 250

# The consumer's own steps, run in a process that SIGKILLs itself at the worst moments.
_DOOMED = """
import os, signal, sys
from stb_origin.settings import from_env
from stb_origin.services import build_services
from stb_origin.webhooks.consumer import Consumer

consumer = Consumer(build_services(from_env()), name="doomed")
entries = consumer._take(None)
assert entries, "nothing to take"
if sys.argv[1] == "after_commit":
    consumer._make_deliveries(entries)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _subscribe(services: Services, count: int = 2) -> list[str]:
    with services.db.session() as session:
        return [subscriptions.create(session, services.envelope, f"http://127.0.0.1:9/{n}",
                                     ["title.updated"], True)[0].id for n in range(count)]


def _publish(services: Services, count: int) -> None:
    with services.redis.pipeline(transaction=False) as pipe:
        for _ in range(count):
            pipe.xadd(eventlog.STREAM, eventlog.encode(eventlog.CATALOG, {
                "title": new_id(), "change": "updated"}))
        pipe.execute()


def _rows(services: Services) -> tuple[int, int]:
    """(deliveries, distinct (webhook, event) pairs)."""
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(Delivery))
        pairs = session.scalar(select(func.count()).select_from(
            select(Delivery.webhook_id, Delivery.event_id).distinct().subquery()))
    return int(total or 0), int(pairs or 0)


def _pending(services: Services) -> int:
    return int(services.redis.xpending(eventlog.STREAM, GROUP)["pending"])


def test_a_consumer_killed_between_commit_and_acknowledgement_doubles_nothing(
        hook_services: Services) -> None:
    _kill_mid_batch(hook_services, "after_commit")


def test_a_consumer_killed_before_its_commit_loses_nothing(local_services: Services) -> None:
    _kill_mid_batch(local_services, "before_commit")


def _kill_mid_batch(hook_services: Services, crash: str) -> None:
    Consumer(hook_services, name="first").turn()  # the group, before any event
    _subscribe(hook_services)
    _publish(hook_services, EVENTS)
    doomed = subprocess.run([sys.executable, "-c", _DOOMED, crash], check=False, timeout=120,
                            env={**os.environ, **hook_services.settings.to_env()},
                            capture_output=True)
    assert doomed.returncode == -signal.SIGKILL, doomed.stderr.decode()[-3000:]
    # It took a batch and never acknowledged it; what it committed stays committed.
    assert _pending(hook_services) == 100
    assert _rows(hook_services) == ((200, 200) if crash == "after_commit" else (0, 0))

    # A live consumer takes over what the dead one held (at once here: idle 0 ms).
    survivor = Consumer(hook_services, name="survivor", claim_idle_ms=0)
    while survivor.turn():
        pass
    assert _rows(hook_services) == (2 * EVENTS, 2 * EVENTS)
    assert _pending(hook_services) == 0


def test_consumers_running_at_once_make_each_delivery_once(hook_services: Services) -> None:
    Consumer(hook_services, name="first").turn()
    webhooks = _subscribe(hook_services, 3)
    _publish(hook_services, EVENTS)
    errors: list[BaseException] = []

    def consume(name: str) -> None:
        try:
            consumer = Consumer(hook_services, name=name)
            while consumer.turn():
                pass
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(f"c{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert _rows(hook_services) == (len(webhooks) * EVENTS, len(webhooks) * EVENTS)
    assert _pending(hook_services) == 0


def test_a_consumer_comes_back_when_redis_lost_its_group(hook_services: Services) -> None:
    consumer = Consumer(hook_services, name="c")
    consumer.turn()
    _subscribe(hook_services, 1)
    hook_services.redis.delete(eventlog.STREAM)  # a Redis restarted without its data
    assert consumer.turn() == 0
    consumer.turn()  # the group again, from now on
    _publish(hook_services, 3)
    assert consumer.turn() == 3
    assert _rows(hook_services) == (3, 3)


def test_tidying_drops_finished_deliveries_past_the_log_s_time_and_dead_consumers(
        hook_services: Services) -> None:
    consumer = Consumer(hook_services, name="live", forget_idle_ms=0)
    consumer.turn()
    [webhook] = _subscribe(hook_services, 1)
    old, new = utcnow() - timedelta(days=31), utcnow() - timedelta(days=29)
    with hook_services.db.session() as session:
        deliveries.add(session, [deliveries.NewDelivery(webhook, f"{n}-0", "title.updated", "{}")
                                 for n in range(4)], old)
        rows = session.scalars(select(Delivery).order_by(Delivery.event_id)).all()
        for row, (state, at) in zip(rows, [("delivered", old), ("failed", old),
                                           ("pending", old), ("delivered", new)], strict=True):
            # Both given: the column's onupdate would stamp a changed row with now.
            session.execute(update(Delivery).where(Delivery.id == row.id)
                            .values(state=state, updated_at=at))
            session.add(Attempt(delivery_id=row.id, number=1, at=at, status_code=500,
                                error=None, duration_ms=1))
    _publish(hook_services, 2)
    hook_services.redis.xreadgroup(GROUP, "holder", {eventlog.STREAM: ">"}, count=1)
    hook_services.redis.xreadgroup(GROUP, "ghost", {eventlog.STREAM: ">"}, count=1)
    hook_services.redis.xack(eventlog.STREAM, GROUP, *[
        entry[0] for entry in hook_services.redis.xrange(eventlog.STREAM)][1:])

    consumer.tidy()
    with hook_services.db.session() as session:
        kept = session.execute(select(Delivery.event_id, Delivery.state)
                               .order_by(Delivery.event_id)).all()
        attempts = session.scalar(select(func.count()).select_from(Attempt))
    assert [tuple(row) for row in kept] == [("2-0", "pending"), ("3-0", "delivered")]
    assert attempts == 2
    names = {c["name"] for c in hook_services.redis.xinfo_consumers(eventlog.STREAM, GROUP)}
    # "ghost" acknowledged what it took and is idle; "holder" still holds an entry.
    assert {n.decode() if isinstance(n, bytes) else n for n in names} - {"live"} == {"holder"}
