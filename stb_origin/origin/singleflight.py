"""Concurrent calls for the same key share one run of the work (Go's singleflight)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    def __init__(self) -> None:
        self.done = anyio.Event()
        # Neither set when the leader was cancelled before an outcome.
        self.result: tuple[V] | None = None
        self.error: Exception | None = None


class SingleFlight(Generic[K, V]):
    """One flight per key and event loop: the first caller runs ``work``; callers
    arriving while it runs wait and get its value or its exception.

    Nothing is remembered once a flight lands: keeping results is the cache's job.
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[V]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """``work``'s value and whether it was shared (another caller ran it)."""
        while (flight := self._flights.get(key)) is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result[0], True
            # The leader was cancelled (its client went away): go again, perhaps
            # as the leader this time, rather than fail every waiter with it.
        flight = _Flight[V]()
        self._flights[key] = flight
        try:
            value = await work()
        except Exception as exc:
            flight.error = exc
            raise
        else:
            flight.result = (value,)
            return value, False
        finally:
            del self._flights[key]
            flight.done.set()
