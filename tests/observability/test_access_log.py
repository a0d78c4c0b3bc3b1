"""The access log over a real server: JSON lines, request ids, asset ids, no secrets."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from tests.support.logs import JsonLines, captured
from tests.support.media import make_clip


@pytest.fixture
def log_lines() -> Iterator[JsonLines]:
    with captured(logging.INFO) as lines:
        yield lines


def _access(log_lines: JsonLines, request_id: str) -> dict[str, object]:
    return log_lines.wait_for(logger="stb_origin.access", request_id=request_id)


def test_a_request_id_from_the_cdn_is_kept_echoed_and_logged(api, log_lines):
    asset_id = secrets.token_hex(16)
    response = httpx.get(f"{api}/hls/{asset_id}/master.m3u8",
                         headers={"X-Request-ID": "cdn-7f3a.01_x"}, timeout=10)
    assert response.headers["x-request-id"] == "cdn-7f3a.01_x"
    line = _access(log_lines, "cdn-7f3a.01_x")
    assert line["msg"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == f"/hls/{asset_id}/master.m3u8"
    assert line["status"] == 404
    assert line["route"] == "hls_playlist"
    assert line["asset_id"] == asset_id
    assert line["bytes"] == len(response.content)
    assert isinstance(line["ms"], float | int)
    assert line["level"] == "info" and line["ts"]


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 65, "<script>",
                                      "id\u00e9", "a;b", "../../etc"])
def test_a_missing_or_invalid_request_id_is_replaced(api, log_lines, incoming):
    headers = {} if incoming is None else {"X-Request-ID": incoming.encode("utf-8")}
    response = httpx.get(f"{api}/healthz", headers=headers, timeout=10)
    request_id = response.headers["x-request-id"]
    assert request_id != incoming
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    line = _access(log_lines, request_id)
    assert line["route"] == "health"
    assert "asset_id" not in line


@pytest.mark.parametrize("path, route", [
    ("/hls/{id}/v0a1/360p/seg_00001.m4s", "hls_segment"),
    ("/keys/{id}/key1", "keys"),
    ("/v1/assets/{id}", "ingest"),
])
def test_lines_for_one_asset_carry_its_id(api, log_lines, path, route):
    asset_id = secrets.token_hex(16)
    request_id = secrets.token_hex(6)
    httpx.get(api + path.format(id=asset_id), headers={"X-Request-ID": request_id}, timeout=10)
    line = _access(log_lines, request_id)
    assert (line["asset_id"], line["route"]) == (asset_id, route)


def test_an_upload_line_carries_the_new_asset_id(api, services, log_lines, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, size="320x180", audio=False)
    token = services.signer.issue(["assets:write"])
    with clip.open("rb") as file:
        response = httpx.post(f"{api}/v1/assets", files={"file": ("clip.mp4", file)},
                              headers={"Authorization": f"Bearer {token}",
                                       "X-Request-ID": "upload-1"}, timeout=30)
    assert response.status_code == 202
    line = _access(log_lines, "upload-1")
    assert line["asset_id"] == response.json()["id"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "ingest", 202)
    # The ingest module's own line was written inside the request: same ids.
    uploaded = log_lines.wait_for(msg="asset uploaded")
    assert uploaded["request_id"] == "upload-1"


def test_query_strings_and_tokens_are_never_logged(api, services, log_lines):
    asset_id = secrets.token_hex(16)
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, asset_id, [key], services.envelope)
    token = services.signer.issue(["playback"], device_id="box-9")
    in_query = httpx.get(f"{api}/keys/{asset_id}/{key.key_id}", params={"token": token},
                         headers={"X-Request-ID": "q-1"}, timeout=10)
    in_header = httpx.get(f"{api}/keys/{asset_id}/{key.key_id}?debug=leak-me",
                          headers={"X-Request-ID": "h-1", "Authorization": f"Bearer {token}"},
                          timeout=10)
    assert in_query.status_code == in_header.status_code == 200
    for request_id in ("q-1", "h-1"):
        line = _access(log_lines, request_id)
        assert line["path"] == f"/keys/{asset_id}/{key.key_id}"
        assert line["asset_id"] == asset_id
    # Lines written by the key route while handling a request carry its ids too
    # (deliveries log at debug: the audit and the access log have them).
    missing = httpx.get(f"{api}/keys/{asset_id}/nosuchkey?debug=leak-me",
                        headers={"X-Request-ID": "h-2", "Authorization": f"Bearer {token}"},
                        timeout=10)
    assert missing.status_code == 404
    refused = log_lines.wait_for(msg="key refused", request_id="h-2")
    assert refused["asset_id"] == asset_id
    everything = "\n".join(log_lines.raw)
    for secret in (token, token.split(".")[1], "token=", "leak-me", "debug="):
        assert secret not in everything


def test_a_signed_url_is_logged_without_its_token(api, log_lines):
    asset_id = secrets.token_hex(16)
    token = "st=exp=4102444800~acl=" + asset_id + "~hmac=" + "ab" * 32
    httpx.get(f"{api}/hls/{token}/{asset_id}/master.m3u8", headers={"X-Request-ID": "s-1"},
              timeout=10)
    line = _access(log_lines, "s-1")
    assert line["path"] == f"/hls/st=<redacted>/{asset_id}/master.m3u8"
    assert (line["asset_id"], line["route"]) == (asset_id, "hls_playlist")
    assert "ab" * 32 not in "\n".join(log_lines.raw)


def test_the_request_context_does_not_leak_into_the_next_request(api, log_lines):
    asset_id = secrets.token_hex(16)
    httpx.get(f"{api}/hls/{asset_id}/master.m3u8", headers={"X-Request-ID": "first"},
              timeout=10)
    httpx.get(f"{api}/healthz", headers={"X-Request-ID": "second"}, timeout=10)
    assert "asset_id" not in _access(log_lines, "second")


class BrokenEnvelope:
    def open(self, *args: object, **kwargs: object) -> bytes:
        raise RuntimeError("injected: the key-encryption key is gone")


def test_an_unhandled_error_is_logged_with_the_request_ids(api, app, services, log_lines):
    asset_id = secrets.token_hex(16)
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, asset_id, [key], services.envelope)
    app.state.key_delivery._envelope = BrokenEnvelope()
    token = services.signer.issue(["playback"])
    response = httpx.get(f"{api}/keys/{asset_id}/{key.key_id}", timeout=10,
                         headers={"X-Request-ID": "boom-1", "Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    line = _access(log_lines, "boom-1")
    assert (line["status"], line["asset_id"]) == (500, asset_id)
    error = log_lines.wait_for(msg="unhandled error")
    assert (error["request_id"], error["asset_id"]) == ("boom-1", asset_id)
    assert "injected" in str(error["exc"])
