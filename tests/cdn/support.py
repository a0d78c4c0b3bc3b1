"""The origin side of the CDN tests and bench: a real app on uvicorn that can be
stopped, the requests that reached it, and a small published HLS tree."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stb_origin.storage import LocalStorage, ObjectInfo, Storage, StorageUnavailable
from tests.support.http import run_server

M3U8 = "application/vnd.apple.mpegurl"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int = 0  # set before the answer leaves, so a client never sees it unset
    body_bytes: int = 0


class RequestLog:
    """ASGI wrapper that records every request reaching the origin (and its answer),
    and can hold chosen paths back for a while to widen race windows.

    A request is recorded when it arrives and its answer before it is sent, so
    whatever a client has received is already in the log: no waiting needed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                    headers)
        with self._lock:
            self.seen.append(seen)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            elif message["type"] == "http.response.body":
                seen.body_bytes += len(message.get("body", b""))
            await send(message)

        if delay := self.delays.get(seen.path):
            await anyio.sleep(delay)
        await self.app(scope, receive, recording_send)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    def count(self, path: str) -> int:
        return len(self.requests(path))

    def per_path(self) -> Counter[str]:
        return Counter(s.path for s in self.requests())

    def body_bytes(self) -> int:
        return sum(s.body_bytes for s in self.requests())


class OriginServer:
    """The app behind a RequestLog on a real uvicorn server, stoppable mid-test."""

    def __init__(self, app: ASGIApp) -> None:
        self.log = RequestLog(app)
        self._stack = ExitStack()
        self.base_url = ""

    @property
    def upstream(self) -> str:
        return self.base_url.removeprefix("http://")

    def start(self) -> OriginServer:
        # With WebSockets, as the origin is deployed (GET /v1/events).
        self.base_url = self._stack.enter_context(run_server(self.log, ws="websockets-sansio"))
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> OriginServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class OutageStorage(LocalStorage):
    """A folder that can be made unreachable, as a store in an outage is."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("storage is down (test)")

    def stat(self, key: str) -> ObjectInfo:
        self._check()
        return super().stat(key)

    def read_chunks(self, key: str, start: int = 0, end: int | None = None,
                    chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        self._check()
        yield from super().read_chunks(key, start, end, chunk_size)


@dataclass
class FakeAsset:
    """A published HLS tree as the packager lays it out, with made-up bytes:
    master last under hls/{id}/, the rest under a version prefix."""

    asset_id: str
    renditions: dict[str, int]  # name -> segment size in bytes
    segments: int = 6
    version: str = "v1"
    key_id: str = "k0"
    files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(self.asset_id)
        for name, size in self.renditions.items():
            lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:4",
                     "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
                     f'#EXT-X-KEY:METHOD=AES-128,URI="/keys/{self.asset_id}/{self.key_id}",'
                     f"IV=0x{rng.randbytes(16).hex()}",
                     '#EXT-X-MAP:URI="init.mp4"']
            self.files[f"{self.version}/{name}/init.mp4"] = rng.randbytes(900)
            for n in range(self.segments):
                segment = f"seg_{n:05d}.m4s"
                self.files[f"{self.version}/{name}/{segment}"] = rng.randbytes(size)
                lines += ["#EXTINF:4.000,", segment]
            lines.append("#EXT-X-ENDLIST")
            self.files[f"{self.version}/{name}/index.m3u8"] = "\n".join(lines).encode() + b"\n"
        master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for name, size in self.renditions.items():
            bandwidth = size * 8 // 4
            master += [f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={bandwidth},"
                       f'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000',
                       f"{self.version}/{name}/index.m3u8"]
        self.files["master.m3u8"] = "\n".join(master).encode() + b"\n"

    def url(self, path: str) -> str:
        return f"/hls/{self.asset_id}/{path}"

    def segment_paths(self, rendition: str) -> list[str]:
        return [f"{self.version}/{rendition}/seg_{n:05d}.m4s" for n in range(self.segments)]

    def publish(self, storage: Storage) -> FakeAsset:
        for path, data in self.files.items():
            if path != "master.m3u8":
                storage.put_bytes(f"hls/{self.asset_id}/{path}", data, _content_type(path))
        storage.put_bytes(f"hls/{self.asset_id}/master.m3u8", self.files["master.m3u8"], M3U8)
        return self


def _content_type(path: str) -> str:
    if path.endswith(".m3u8"):
        return M3U8
    return "video/mp4" if path.endswith(".mp4") else "video/iso.segment"
