"""The JSON errors the HTTP edge answers when no handler does."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(("method", "path", "allowed"), [
    # One route per method on these paths: the 405 must name all of them.
    ("DELETE", "/v1/assets", "GET, HEAD, POST"),
    ("PUT", "/v1/assets/0123456789abcdef0123456789abcdef", "DELETE, GET, HEAD"),
    ("DELETE", "/device", "GET, HEAD, POST"),
    ("POST", "/healthz", "GET, HEAD"),
])
def test_a_method_the_path_lacks_is_405_naming_every_method_it_has(
        api: str, method: str, path: str, allowed: str) -> None:
    response = httpx.request(method, api + path, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"error": {"code": "method_not_allowed",
                                         "message": "Method Not Allowed"}}
