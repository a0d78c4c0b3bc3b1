"""Event clients over real sockets: a WebSocket client (the websockets library) and
an SSE reader over httpx."""

from __future__ import annotations

import base64
import json
import os
import socket as sockets
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

# How long a client waits for a message before the test fails (a guard, not a measure).
WAIT_S = 15.0


def ws_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://") + "/v1/events" + (f"?{query}" if query else "")


@contextmanager
def socket(base_url: str, token: str | None = None, query: str = "",
           **options: Any) -> Iterator[ClientConnection]:
    """A WebSocket on /v1/events, the token in the Authorization header."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with connect(ws_url(base_url, query), additional_headers=headers, open_timeout=WAIT_S,
                 **options) as ws:
        yield ws


def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=WAIT_S))
    return message


def subscribed(ws: ClientConnection) -> dict[str, Any]:
    """The first message, which says the subscription is in place."""
    first = receive(ws)
    assert first["type"] == "subscribed", first
    return first


def next_event(ws: ClientConnection) -> dict[str, Any]:
    """The next event (heartbeats skipped)."""
    while True:
        message = receive(ws)
        if message["type"] != "heartbeat":
            return message


def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    """The close code and reason, once the server has closed (within WAIT_S:
    heartbeats keep an open socket busy, so a timeout per message is not enough)."""
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=WAIT_S)
    except ConnectionClosed:
        return ws.close_code, ws.close_reason
    raise AssertionError(f"the server did not close the socket within {WAIT_S:g} s")


class SseReader:
    """The messages of a text/event-stream, parsed as EventSource does (enough of it)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self, skip_heartbeats: bool = True) -> dict[str, str]:
        message: dict[str, str] = {}
        for line in self._lines:
            if not line:
                if message:
                    return message
                continue
            if line.startswith(":"):
                if not skip_heartbeats:
                    return {"comment": line[1:].strip()}
                continue
            name, _, value = line.partition(":")
            message[name] = value.removeprefix(" ")
        raise EOFError("the stream ended")

    def next_data(self) -> tuple[str, dict[str, Any]]:
        message = self.next()
        return message["event"], json.loads(message["data"])

    def ended(self) -> bool:
        """Whether the stream ends (within WAIT_S) before its next message."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if "comment" not in self.next(skip_heartbeats=False):
                    return False
            except EOFError:
                return True
        return False


@contextmanager
def sse(base_url: str, token: str | None, query: str = "",
        headers: dict[str, str] | None = None) -> Iterator[SseReader]:
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    with httpx.stream("GET", base_url + "/v1/events" + (f"?{query}" if query else ""),
                      headers=sent, timeout=WAIT_S) as response:
        yield SseReader(response)


def sse_subscribed(reader: SseReader) -> dict[str, Any]:
    assert reader.response.status_code == 200, reader.response.read()
    event, data = reader.next_data()
    assert event == "subscribed", (event, data)
    return data



class StalledSocket:
    """A WebSocket client that does the handshake and then reads nothing (a box that
    hung), with a small receive buffer; ``frames()`` reads what piled up afterwards."""

    def __init__(self, base_url: str, token: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = sockets.socket()
        self.sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
        self.sock.settimeout(WAIT_S)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._recv()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        return chunk

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._recv()
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(opcode, payload) of each frame, up to and including a close frame."""
        while True:
            first, second = self._take(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._take(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._take(8))[0]
            opcode, payload = first & 0x0F, self._take(size)
            yield opcode, payload
            if opcode == 0x8:
                return

    def close(self) -> None:
        self.sock.close()
