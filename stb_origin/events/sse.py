"""GET /v1/events as Server-Sent Events, for clients that cannot open a WebSocket.

A small response of our own rather than sse-starlette: the format is four
kinds of lines, and what it would add (its own disconnect and ping handling)
we need to control ourselves (heartbeats renew the connection's slot; shutdown
and a slow consumer end the stream). Events carry ``id:`` (the offset), so a
browser's EventSource comes back with ``Last-Event-ID`` on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stb_origin.events.access import listener
from stb_origin.events.service import Connection, Events, events_of
from stb_origin.events.session import Control, Outgoing, outgoing
from stb_origin.web.bearer import bearer_token, missing_token
from stb_origin.web.errors import ApiError
from stb_origin.web.http import services_of

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def wants_stream(request: Request) -> bool:
    return any(part.split(";")[0].strip().lower() == MEDIA_TYPE
               for part in request.headers.get("accept", "").split(","))


async def events_stream(request: Request) -> Response:
    if not wants_stream(request):
        raise ApiError(406, "not_acceptable", "GET /v1/events is a WebSocket (Upgrade:"
                       " websocket) or Server-Sent Events (Accept: text/event-stream)")
    events = events_of(request.app.state)
    token = bearer_token(request)
    if token is None:
        raise missing_token()
    after = request.query_params.get("after") or request.headers.get("last-event-id")
    await events.check_offset(after)
    who = await listener(services_of(request), token, request.query_params.get("topics"))
    # Taken here, so that a refusal is still an HTTP answer; the stream gives it back.
    held = AsyncExitStack()
    connection = await held.enter_async_context(events.connection(who))
    return EventStream(events, connection, after, held)


class EventStream(Response):
    """The stream of one connection, until the client goes, lags behind or the
    server stops."""

    media_type = MEDIA_TYPE

    def __init__(self, events: Events, connection: Connection, after: str | None,
                 held: AsyncExitStack) -> None:
        super().__init__(headers=HEADERS)
        # A stream has no length: Response would have said 0.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._events = events
        self._connection = connection
        self._after = after
        self._held = held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._held:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            subscriber = self._connection.subscriber
            async with anyio.create_task_group() as tasks:
                async def stop_on(flag: asyncio.Event) -> None:
                    await flag.wait()
                    tasks.cancel_scope.cancel()

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tasks.cancel_scope.cancel()

                async def stream() -> None:
                    with suppress(OSError):  # the client went: until_disconnect ends it
                        async for message in outgoing(self._events.hub, subscriber,
                                                      self._connection.start, self._after,
                                                      self._events.heartbeat_s):
                            await send({"type": "http.response.body",
                                        "body": _frame(message).encode(), "more_body": True})
                        tasks.cancel_scope.cancel()  # signed out

                async def end_after(ending: Callable[[Connection], Awaitable[None]]) -> None:
                    await ending(self._connection)  # the token expired or was revoked
                    tasks.cancel_scope.cancel()

                tasks.start_soon(stream)
                tasks.start_soon(until_disconnect)
                tasks.start_soon(end_after, self._events.keep_alive)
                tasks.start_soon(end_after, self._events.token_expiry)
                tasks.start_soon(stop_on, subscriber.dropped)
                tasks.start_soon(stop_on, self._events.hub.closing)
            with anyio.move_on_after(2):  # a client that reads nothing takes nothing more
                with suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _frame(message: Outgoing) -> str:
    if isinstance(message, Control):
        if message.name == "heartbeat":
            return ": heartbeat\n\n"
        offset = f"id: {message.offset}\n" if message.offset else ""
        return f"{offset}event: {message.name}\ndata: {_json(message.data)}\n\n"
    return f"id: {message.offset}\nevent: {message.topic}\ndata: {message.text}\n\n"


def _json(data: object) -> str:
    # One line: json.dumps escapes newlines inside strings, so no "data:" line breaks.
    return json.dumps(data, separators=(",", ":"))
