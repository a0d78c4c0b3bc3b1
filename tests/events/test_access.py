"""Who may listen, and to what: refused tokens on the socket and on SSE, the ways a
WebSocket may carry its token (never the URL), boxes hearing their own account and
device only, and the limits on connections and subscriptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import ClientConnection, connect

from stb_origin import eventlog
from stb_origin.accounts import devices
from stb_origin.app import create_app
from stb_origin.auth import denylist
from stb_origin.events.audience import MAX_SUBSCRIPTIONS
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.drm.support import Box, household, revoke
from tests.events.clients import (
    WAIT_S,
    closed_with,
    next_event,
    socket,
    sse,
    sse_subscribed,
    subscribed,
    ws_url,
)
from tests.support.http import run_server


def _forged(token: str) -> str:
    """The genuine token's header and claims, signed by an attacker's key."""
    return jwt.encode(jwt.decode(token, options={"verify_signature": False}),
                      ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                      headers=jwt.get_unverified_header(token))


def _refused_tokens(services: Services, box: Box) -> dict[str, tuple[str | None, int, str]]:
    """name -> (token, HTTP status, error code)."""
    return {
        "missing": (None, 401, "unauthorized"),
        "garbage": ("not-a-jwt", 401, "invalid_token"),
        "forged": (_forged(box.token), 401, "invalid_token"),
        "expired": (services.signer.issue(["playback"], subject=box.user_id,
                                          device_id=box.device_id, ttl_s=-300),
                    401, "invalid_token"),
        "wrong scope": (services.signer.issue(["account"], subject=box.user_id),
                        403, "insufficient_scope"),
    }


@pytest.mark.parametrize("case", ["missing", "garbage", "forged", "expired", "wrong scope"])
def test_refused_tokens_on_sse_and_on_the_socket(live_api: str, services: Services, box: Box,
                                                 case: str) -> None:
    token, status, code = _refused_tokens(services, box)[case]
    with sse(live_api, token) as stream:
        assert stream.response.status_code == status
        assert json.loads(stream.response.read())["error"]["code"] == code
    if token is None:
        return  # the socket waits for a first message instead: see below
    with socket(live_api, token) as ws:
        close_code, reason = closed_with(ws)
    assert close_code == 4000 + status
    assert reason is not None and reason.startswith(f"{code}:")


@contextmanager
def _bare(url: str, **options: object) -> Iterator[ClientConnection]:
    with connect(url, open_timeout=WAIT_S, **options) as ws:  # type: ignore[arg-type]
        yield ws


def test_a_socket_takes_its_token_as_a_subprotocol_or_first_message(
        live_api: str, services: Services, box: Box) -> None:
    with _bare(ws_url(live_api), subprotocols=["stb-events", f"bearer.{box.token}"]) as ws:
        # The chosen protocol is ours, never the one that holds the token.
        assert ws.subprotocol == "stb-events"
        subscribed(ws)
    with _bare(ws_url(live_api)) as ws:
        ws.send(json.dumps({"token": box.token}))
        subscribed(ws)
        # What a client sends later is not read: the connection goes on.
        ws.send(b"\x00binary")
        ws.send("text")
        offset = eventlog.publish(services.redis, eventlog.CATALOG, {})
        assert next_event(ws)["id"] == offset


@pytest.mark.parametrize("first", ['{"token": 5}', "not json", '{"token": "x", "more": 1}',
                                   '["token"]', json.dumps({"token": "x" * 9000}),
                                   b'{"token": "binary"}'])
def test_a_bad_first_message_is_refused(live_api: str, first: str | bytes) -> None:
    with _bare(ws_url(live_api)) as ws:
        ws.send(first)
        code, reason = closed_with(ws)
    assert code in (4400, 4401)
    assert reason


def test_a_token_in_the_url_is_not_taken(live_api: str, box: Box) -> None:
    # It would land in access logs: the socket waits for a token it can take.
    with _bare(ws_url(live_api, f"token={box.token}")) as ws:
        ws.send(json.dumps({"token": "nope"}))
        assert closed_with(ws)[0] == 4401
    with sse(live_api, None, query=f"token={box.token}") as stream:
        assert stream.response.status_code == 401


def test_a_box_hears_its_own_account_and_device_only(live_api: str, services: Services,
                                                     box: Box) -> None:
    neighbour = household(services)
    with socket(live_api, box.token) as ws, sse(live_api, neighbour.token) as stream:
        subscribed(ws)
        sse_subscribed(stream)
        # Everything meant for the neighbour first, then one for this box.
        eventlog.publish(services.redis, eventlog.ENTITLEMENTS, {"n": 1},
                         account=neighbour.account_id)
        eventlog.send_command(services.redis, neighbour.device_id, neighbour.account_id,
                              "resync")
        # Right account, another device of it: still not this box's command.
        eventlog.publish(services.redis, eventlog.COMMANDS, {"command": "resync"},
                         account=box.account_id, device="0" * 32)
        mine = eventlog.publish(services.redis, eventlog.ENTITLEMENTS, {"n": 2},
                                account=box.account_id)
        assert next_event(ws)["id"] == mine
        # The neighbour heard its own two, and not this box's.
        assert [stream.next()["event"] for _ in range(2)] == ["entitlements", "commands"]
        last = eventlog.publish(services.redis, eventlog.CATALOG, {})
        assert stream.next()["id"] == last


def test_topics_are_limited_by_scope_and_count(live_api: str, services: Services,
                                               box: Box, editor: str) -> None:
    with socket(live_api, box.token, query="topics=assets") as ws:
        code, reason = closed_with(ws)
    assert (code, reason) == (4403, "insufficient_scope: topics: this token may not read"
                                    " 'assets'")
    many = ",".join(f"catalog:t{n}" for n in range(MAX_SUBSCRIPTIONS + 1))
    with sse(live_api, box.token, query=f"topics={many}") as stream:
        assert stream.response.status_code == 400
        assert json.loads(stream.response.read())["error"]["code"] == "too_many_subscriptions"
    for bad in ("nonsense", "catalog:../x", "catalog:" + "a" * 65, "x" * 3000):
        with sse(live_api, box.token, query=f"topics={bad}") as stream:
            assert stream.response.status_code == 400, bad
    # One asset's progress only, for the content team.
    with socket(live_api, editor, query="topics=assets:a1") as ws:
        assert subscribed(ws)["topics"] == ["assets:a1"]
        eventlog.publish(services.redis, eventlog.ASSETS, {"n": 1}, key="a2")
        followed = eventlog.publish(services.redis, eventlog.ASSETS, {"n": 2}, key="a1")
        assert next_event(ws)["id"] == followed


def test_connections_per_device_are_limited(live_api: str, services: Services,
                                            box: Box) -> None:
    limit = services.settings.events_per_device
    opened = [socket(live_api, box.token) for _ in range(limit)]
    sockets = [o.__enter__() for o in opened]
    try:
        for ws in sockets:
            subscribed(ws)
        with socket(live_api, box.token) as refused:
            code, reason = closed_with(refused)
        assert code == 4429
        assert reason == (f"too_many_connections: this device has {limit} event connections"
                          " open already (the most it may)")
        with sse(live_api, box.token) as stream:
            assert stream.response.status_code == 429
            assert stream.response.headers["retry-after"]
    finally:
        for o in opened:
            o.__exit__(None, None, None)
    # Closed ones give their slot back at once.
    with socket(live_api, box.token) as ws:
        subscribed(ws)


def test_a_revoked_device_is_signed_out_and_refused(live_api: str, services: Services,
                                                    box: Box) -> None:
    with socket(live_api, box.token) as ws:
        subscribed(ws)
        with services.db.session() as session:
            devices.revoke_device(session, box.device_id)
        eventlog.send_command(services.redis, box.device_id, box.account_id, "sign_out")
        assert next_event(ws)["data"] == {"command": "sign_out"}
        assert closed_with(ws) == (4401, "signed_out: this device was signed out")
    revoke(services, box.device_id)
    with socket(live_api, box.token) as ws:
        code, reason = closed_with(ws)
    assert code == 4401 and reason is not None and "revoked" in reason


def test_a_revoked_token_s_connections_end_and_its_other_tokens_do_not(
        settings: Settings) -> None:
    # An OAuth revocation or a console sign-out puts the token on the deny-list
    # without telling the device: its open connections are checked at each heartbeat.
    services = build_services(settings.with_(events_heartbeat_s=0.2, events_per_device=3))
    try:
        box = household(services)
        other = services.signer.issue(["playback"], subject=box.user_id,
                                      device_id=box.device_id)
        claims = jwt.decode(box.token, options={"verify_signature": False})
        with run_server(create_app(services), ws="websockets-sansio") as base_url, \
                socket(base_url, box.token) as revoked, sse(base_url, box.token) as stream, \
                socket(base_url, other) as kept:
            for ws in (revoked, kept):
                subscribed(ws)
            sse_subscribed(stream)
            denylist.deny_token(services.redis, claims["jti"], claims["exp"])
            assert closed_with(revoked) == (4401, "token_revoked: sign in again")
            assert stream.ended()
            # The device's other token still hears its commands ...
            eventlog.send_command(services.redis, box.device_id, box.account_id, "resync")
            assert next_event(kept)["data"] == {"command": "resync"}
            # ... until the device itself is denied, even with no sign_out sent.
            denylist.deny_device(services.redis, box.device_id, 60)
            assert closed_with(kept) == (4401, "token_revoked: sign in again")
    finally:
        services.close()


def test_a_socket_without_a_token_is_closed_once_its_time_is_up(
        live_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from stb_origin.events import socket as event_socket

    monkeypatch.setattr(event_socket, "FIRST_MESSAGE_TIMEOUT_S", 0.2)  # the server is in-process
    with _bare(ws_url(live_api)) as ws:
        assert closed_with(ws) == (4401, "unauthorized: no token came in time")


def test_connections_per_token_subject_are_limited(settings: Settings, editor: str) -> None:
    services = build_services(settings.with_(events_per_subject=1))
    try:
        with run_server(create_app(services), ws="websockets-sansio") as base_url, \
                socket(base_url, editor) as first:
            subscribed(first)
            with socket(base_url, editor) as refused:
                code, reason = closed_with(refused)
    finally:
        services.close()
    assert code == 4429
    assert reason == ("too_many_connections: this token subject has 1 event connections"
                      " open already (the most it may)")
