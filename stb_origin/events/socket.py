"""GET /v1/events as a WebSocket.

The token comes in the ``Authorization`` header, or (browsers cannot set
headers) as a subprotocol ``bearer.<token>`` offered beside ``stb-events``, or
in the first message, ``{"token": "..."}``; never in the URL, where it would
land in logs. Every message is a JSON object with a ``type``: ``subscribed``,
``event``, ``resync``, ``heartbeat``. Refusals and ends are close codes with a
reason (``CLOSE_CODES``).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from stb_origin import eventlog
from stb_origin.events.access import listener
from stb_origin.events.service import Connection, Events, events_of
from stb_origin.events.session import Control, outgoing
from stb_origin.web.bearer import bearer_token
from stb_origin.web.errors import ApiError
from stb_origin.web.http import services_of

PROTOCOL = "stb-events"
TOKEN_PROTOCOL = "bearer."
FIRST_MESSAGE_TIMEOUT_S = 10.0
MAX_FIRST_MESSAGE = 8192
GOING_AWAY = 1001
SLOW_CONSUMER = 4008
# How long a close frame may wait for room in the client's socket.
CLOSE_WAIT_S = 2.0
SLOW_CLOSE_WAIT_S = 10.0
SIGNED_OUT = 4401
# HTTP statuses of refusals, as close codes: 4000 + status.
CLOSE_CODES = {400: 4400, 401: 4401, 403: 4403, 429: 4429, 503: 4503}
MAX_REASON_BYTES = 123  # what a close frame holds


async def events_socket(websocket: WebSocket) -> None:
    offered = [p.strip() for p in
               websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    try:
        events = events_of(websocket.app.state)
        token = _token(websocket, offered) or await _first_message_token(websocket)
        after = websocket.query_params.get("after")
        await events.check_offset(after)
        who = await listener(services_of(websocket),  # type: ignore[arg-type]
                             token, websocket.query_params.get("topics"))
        async with events.connection(who) as connection:
            await _serve(websocket, events, connection, after)
    except ApiError as exc:
        await _close(websocket, CLOSE_CODES.get(exc.status, 4500), f"{exc.code}: {exc.message}")
    except WebSocketDisconnect:
        pass


def _token(websocket: WebSocket, offered: list[str]) -> str | None:
    token = bearer_token(websocket)  # type: ignore[arg-type]
    if token is not None:
        return token
    for protocol in offered:
        if protocol.startswith(TOKEN_PROTOCOL):
            return protocol[len(TOKEN_PROTOCOL):]
    return None


async def _first_message_token(websocket: WebSocket) -> str:
    with anyio.move_on_after(FIRST_MESSAGE_TIMEOUT_S):
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000))
        message = received.get("text") or ""
        if len(message) > MAX_FIRST_MESSAGE:
            raise ApiError(400, "bad_request", "the first message is too long")
        try:
            body: Any = json.loads(message)
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) != {"token"} or not isinstance(
                body["token"], str):
            raise ApiError(401, "unauthorized", 'a bearer token is required: in the'
                           ' Authorization header, a "bearer.<token>" subprotocol or a'
                           ' first message {"token": "..."}')
        return body["token"]
    raise ApiError(401, "unauthorized", "no token came in time")


async def _serve(websocket: WebSocket, events: Events, connection: Connection,
                 after: str | None) -> None:
    """Send until the client goes, lags behind or the server stops; then close."""
    subscriber = connection.subscriber
    ended: list[tuple[int, str]] = []

    async with anyio.create_task_group() as tasks:
        def end(code: int, reason: str) -> None:
            ended.append((code, reason))
            tasks.cancel_scope.cancel()

        async def send() -> None:
            try:
                async for message in outgoing(events.hub, subscriber, connection.start, after,
                                              events.heartbeat_s):
                    await websocket.send_text(_as_text(message))
                end(SIGNED_OUT, "signed_out: this device was signed out")
            except (WebSocketDisconnect, RuntimeError, OSError):
                end(0, "")

        async def receive() -> None:
            # What a client sends is not read (yet); its going away is.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
            end(0, "")

        async def watch(flag: asyncio.Event, code: int, reason: str) -> None:
            await flag.wait()
            end(code, reason)

        async def expire() -> None:
            await events.token_expiry(connection)
            end(SIGNED_OUT, "token_expired: reconnect with a fresh token")

        async def keep_alive() -> None:
            await events.keep_alive(connection)
            end(SIGNED_OUT, "token_revoked: sign in again")

        tasks.start_soon(send)
        tasks.start_soon(receive)
        tasks.start_soon(keep_alive)
        tasks.start_soon(watch, subscriber.dropped, SLOW_CONSUMER,
                         "slow_consumer: events piled up unread; reconnect with your offset")
        tasks.start_soon(watch, events.hub.closing, GOING_AWAY, "server shutting down")
        tasks.start_soon(expire)
    if ended and ended[0][0]:
        # A slow consumer may read its pile, close frame last, a while later.
        patience = SLOW_CLOSE_WAIT_S if ended[0][0] == SLOW_CONSUMER else CLOSE_WAIT_S
        await _close(websocket, *ended[0], patience)


def _as_text(message: eventlog.Event | Control) -> str:
    if isinstance(message, Control):
        return json.dumps({"type": message.name, **message.data}, separators=(",", ":"))
    return '{"type":"event",' + message.text[1:]


async def _close(websocket: WebSocket, code: int, reason: str,
                 patience_s: float = CLOSE_WAIT_S) -> None:
    """Close, giving up after a moment: a client that reads nothing never acknowledges."""
    shown = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    with anyio.move_on_after(patience_s):
        with suppress(RuntimeError, OSError):  # already closed by the other side
            await websocket.close(code, shown)
