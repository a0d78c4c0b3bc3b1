"""Key delivery over real HTTP: only playback tokens get the 16 bytes, and nothing leaks."""

from __future__ import annotations

import logging

import httpx
import pytest

from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key

ASSET = "ab" * 16


@pytest.fixture
def stored_key(services):  # type: ignore[no-untyped-def]
    key = generate_key()
    with services.db.session() as session:
        keystore.store(session, ASSET, [key], services.envelope)
    return key


def _get(api: str, path: str, token: str | None = None, query: bool = False) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token and not query else {}
    params = {"token": token} if token and query else None
    return httpx.get(api + path, headers=headers, params=params, timeout=10)


@pytest.mark.parametrize("query", [False, True])
def test_playback_token_gets_exactly_the_key(api, services, stored_key, query):
    token = services.signer.issue(["playback"], device_id="box-1")
    response = _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token, query=query)
    assert response.status_code == 200
    assert response.content == stored_key.key and len(response.content) == 16
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["content-type"] == "application/octet-stream"


def test_no_token_or_a_bad_one_is_401(api, services, stored_key):
    path = f"/keys/{ASSET}/{stored_key.key_id}"
    expired = services.signer.issue(["playback"], ttl_s=-300)
    for token in (None, "garbage", expired):
        response = _get(api, path, token)
        assert response.status_code == 401
        assert "no-store" in response.headers["cache-control"]
        assert stored_key.key not in response.content


def test_other_scopes_are_403(api, services, stored_key):
    token = services.signer.issue(["assets:write", "assets:read"])
    response = _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token)
    assert response.status_code == 403


@pytest.mark.parametrize("path", [
    f"/keys/{ASSET}/nokey",
    f"/keys/{'cd' * 16}/KEY",
    f"/keys/{ASSET}/..%2f..%2fetc%2fpasswd",
    "/keys/..%2f..%2fsecrets/kek",
    f"/keys/{ASSET}/{'a' * 65}",
])
def test_unknown_or_malformed_ids_are_404(api, services, stored_key, path):
    token = services.signer.issue(["playback"])
    response = _get(api, path.replace("KEY", stored_key.key_id), token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_keys_and_tokens_never_reach_the_logs(api, services, stored_key, caplog):
    token = services.signer.issue(["playback"], device_id="box-1")
    with caplog.at_level(logging.DEBUG):
        assert _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token, query=True).status_code == 200
        assert _get(api, f"/keys/{ASSET}/{stored_key.key_id}", token).status_code == 200
    # Everything the server side logged (the test's own HTTP client is not the server).
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    assert "key delivered" in text
    assert token not in text
    assert stored_key.key.hex() not in text and repr(stored_key.key) not in text


def test_keys_at_rest_are_wrapped(services, stored_key):
    with services.db.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT wrapped FROM content_keys").fetchall()
    assert rows and all(stored_key.key not in bytes(row[0]) for row in rows)
