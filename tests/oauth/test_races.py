"""Concurrent requests on one code or one refresh token: only one may win,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from functools import partial

import httpx
import pytest

from stb_origin.settings import Settings
from tests.oauth.conftest import (
    BOX_CLIENT,
    Browser,
    FakeClock,
    Person,
    page_id,
    poll,
    sign_in_box,
    start_device_flow,
)

RACERS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "sqlite":
        return settings
    return settings.with_(database_url=request.getfixturevalue("migrated_postgres_url"))


def _race(api: str, send: Callable[[httpx.Client], httpx.Response]) -> list[httpx.Response]:
    """``send`` from RACERS threads at once, each on its own connection."""
    start = threading.Barrier(RACERS)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=api, timeout=30) as client:
            start.wait()
            response = send(client)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == RACERS
    return results


def _outcomes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter("ok" if r.status_code == 200 else r.json()["error"] for r in responses)


def test_concurrent_polls_of_an_approved_code_get_one_set_of_tokens(
        api: str, http: httpx.Client, box_client: str, browser: Browser,
        alice: Person) -> None:
    browser.sign_in(alice.email)
    for _ in range(2):
        codes = start_device_flow(http).json()
        browser.open()
        browser.enter_code(codes["user_code"])
        assert page_id(browser.decide("approve")) == "page-approved"
        results = _race(api, partial(poll, device_code=codes["device_code"]))
        assert _outcomes(results) == {"ok": 1, "invalid_grant": RACERS - 1}


def test_concurrent_polls_of_a_pending_code_count_once(
        api: str, http: httpx.Client, box_client: str) -> None:
    codes = start_device_flow(http).json()
    results = _race(api, lambda client: poll(client, codes["device_code"]))
    assert _outcomes(results) == {"authorization_pending": 1, "slow_down": RACERS - 1}


def test_concurrent_refreshes_with_one_token_rotate_once_then_end_the_family(
        api: str, http: httpx.Client, box_client: str, browser: Browser, clock: FakeClock,
        alice: Person) -> None:
    tokens = sign_in_box(http, browser, clock, alice.email)
    results = _race(api, lambda client: client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": BOX_CLIENT}))
    assert _outcomes(results) == {"ok": 1, "invalid_grant": RACERS - 1}
    winner = next(r.json() for r in results if r.status_code == 200)
    # The losers presented a token already used: a replay, so the family ended,
    # the winner's tokens included.
    again = http.post("/oauth/token", data={"grant_type": "refresh_token",
                                            "refresh_token": winner["refresh_token"],
                                            "client_id": BOX_CLIENT})
    assert again.status_code == 400
    listed = http.get("/v1/devices", headers={"Authorization": f"Bearer {winner['access_token']}"})
    assert listed.status_code == 401
