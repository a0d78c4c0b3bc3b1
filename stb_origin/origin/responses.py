"""A response that streams an object body from storage, never whole in memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import anyio.to_thread
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from stb_origin.storage import StorageError


class ObjectShorterThanAnnounced(StorageError):
    pass


class ObjectResponse(StreamingResponse):
    """Sends ``length`` bytes: ``first`` (already read, so that storage errors
    could still become a proper status) and then ``rest``, read in a worker
    thread. ``rest`` is closed whatever happens, which gives its file or
    connection back even when the client goes away mid-body.

    If storage delivers fewer bytes than announced, the response is aborted
    so the server drops the connection and the CDN cannot cache a short body.
    """

    def __init__(self, first: bytes, rest: Iterator[bytes], length: int, status_code: int,
                 headers: Mapping[str, str], media_type: str) -> None:
        self.first = first
        self.rest = rest
        self.length = length
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers({**headers, "Content-Length": str(length)})

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        sent = 0
        chunk = self.first
        try:
            while chunk and sent < self.length:
                chunk = chunk[: self.length - sent]
                sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if sent < self.length:
                    chunk = await anyio.to_thread.run_sync(next, self.rest, b"")
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close_chunks, self.rest)
        if sent < self.length:
            raise ObjectShorterThanAnnounced(f"object ended after {sent} of {self.length} bytes")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class PathSendResponse(Response):
    """The server sends the file itself (the ASGI ``http.response.pathsend``
    extension: granian uses sendfile), with no read loop in Python. Only for
    immutable objects: the headers were made from a stat of the same file."""

    def __init__(self, path: Path, length: int, headers: Mapping[str, str],
                 media_type: str) -> None:
        self.path = path
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers({**headers, "Content-Length": str(length)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.pathsend", "path": str(self.path)})


def close_chunks(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
