"""SingleFlight: concurrent callers of one key share one run, errors included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from stb_origin.origin.singleflight import SingleFlight


def test_concurrent_callers_share_one_run() -> None:
    runs = 0
    results: list[tuple[str, bool]] = []

    async def work() -> str:
        nonlocal runs
        runs += 1
        await anyio.sleep(0.05)
        return "value"

    async def main() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        async def call() -> None:
            results.append(await flights.run("k", work))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call)
        assert len(flights) == 0

    anyio.run(main)
    assert runs == 1
    assert sorted(results) == [("value", False)] + [("value", True)] * 19


def test_different_keys_run_separately_and_later_calls_run_again() -> None:
    runs: list[str] = []

    async def main() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        def work(key: str) -> Callable[[], Awaitable[str]]:
            async def run() -> str:
                runs.append(key)
                await anyio.sleep(0.01)
                return key
            return run

        async with anyio.create_task_group() as tg:
            tg.start_soon(flights.run, "a", work("a"))
            tg.start_soon(flights.run, "b", work("b"))
        assert await flights.run("a", work("a")) == ("a", False)  # nothing is remembered

    anyio.run(main)
    assert sorted(runs) == ["a", "a", "b"]


def test_the_error_reaches_every_caller() -> None:
    runs = 0
    errors: list[Exception] = []

    async def work() -> str:
        nonlocal runs
        runs += 1
        await anyio.sleep(0.05)
        raise LookupError("gone")

    async def main() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        async def call() -> None:
            try:
                await flights.run("k", work)
            except LookupError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)

    anyio.run(main)
    assert runs == 1 and len(errors) == 5


def test_a_cancelled_leader_does_not_fail_the_waiters() -> None:
    started = 0

    async def work() -> str:
        nonlocal started
        started += 1
        await anyio.sleep(0.1)
        return "value"

    async def main() -> list[tuple[str, bool]]:
        flights: SingleFlight[str, str] = SingleFlight()
        got: list[tuple[str, bool]] = []

        async def waiter() -> None:
            got.append(await flights.run("k", work))

        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as leader_scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(flights.run, "k", work)
                    await anyio.sleep(0.01)
                    outer.start_soon(waiter)
                    await anyio.sleep(0.01)
                    leader_scope.cancel()
        return got

    got = anyio.run(main)
    assert got == [("value", False)]  # the waiter ran the work itself
    assert started == 2


@pytest.mark.parametrize("exc", [KeyError("x"), RuntimeError("y")])
def test_a_lone_caller_gets_its_own_error(exc: Exception) -> None:
    async def work() -> str:
        raise exc

    async def main() -> None:
        with pytest.raises(type(exc)):
            await SingleFlight[str, str]().run("k", work)

    anyio.run(main)
