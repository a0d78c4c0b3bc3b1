"""A plain tus 1.0 client over httpx for protocol tests (tuspy is the independent
client of the interop tests), and the bytes of a file that sniffs as MP4."""

from __future__ import annotations

import base64
import secrets

import httpx

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def master_bytes(size: int) -> bytes:
    """``size`` bytes whose head is an MP4's (enough to be taken and queued)."""
    return MP4_HEAD + secrets.token_bytes(size - len(MP4_HEAD))


def metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in values.items())


class Tus:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    def create(self, length: int, meta: str | None = None, body: bytes | None = None,
               **headers: str) -> httpx.Response:
        sent = {**TUS, **self.auth, "Upload-Length": str(length), **headers}
        if meta is not None:
            sent["Upload-Metadata"] = meta
        if body is not None:
            sent.update(OCTETS)
        return httpx.post(self.base_url + "/v1/uploads", headers=sent, content=body,
                          timeout=30)

    def url(self, response: httpx.Response) -> str:
        assert response.status_code == 201, response.text
        return self.base_url + response.headers["location"]

    def new(self, length: int, meta: str | None = None) -> str:
        return self.url(self.create(length, meta))

    def head(self, url: str, **headers: str) -> httpx.Response:
        return httpx.head(url, headers={**TUS, **self.auth, **headers}, timeout=30)

    def patch(self, url: str, offset: int, body: bytes, **headers: str) -> httpx.Response:
        return httpx.patch(url, content=body, timeout=30, headers={
            **TUS, **self.auth, **OCTETS, "Upload-Offset": str(offset), **headers})

    def delete(self, url: str) -> httpx.Response:
        return httpx.delete(url, headers={**TUS, **self.auth}, timeout=30)

    def send(self, url: str, data: bytes, chunk: int) -> httpx.Response:
        """PATCH data from the upload's offset to the end in chunks; the last answer."""
        offset = int(self.head(url).headers["upload-offset"])
        response = None
        while offset < len(data):
            response = self.patch(url, offset, data[offset:offset + chunk])
            assert response.status_code == 204, response.text
            offset = int(response.headers["upload-offset"])
        assert response is not None
        return response
