"""The event routes: one path, a WebSocket or SSE by what the client asks for."""

from __future__ import annotations

from starlette.routing import Route, WebSocketRoute

from stb_origin.events.commands import post_command
from stb_origin.events.socket import events_socket
from stb_origin.events.sse import events_stream

ROUTES = [
    WebSocketRoute("/v1/events", events_socket),
    Route("/v1/events", events_stream, methods=["GET"]),
    Route("/v1/devices/{device_id:str}/commands", post_command, methods=["POST"]),
]
