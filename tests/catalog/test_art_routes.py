"""Artwork over real HTTP: uploads made into sizes by real ffmpeg, served at /art/
for the CDN, and every kind of bad upload refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from stb_origin.catalog import images
from stb_origin.db.types import new_id
from stb_origin.services import Services
from tests.catalog.conftest import call
from tests.catalog.images import make_image, png_claiming, probe_size
from tests.catalog.test_box_routes import AVC_BOX, _movie
from tests.catalog.test_routes import forged_tokens
from tests.drm.support import entitle, household

JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}


@pytest.fixture
def jpeg(tmp_path: Path) -> bytes:
    return make_image(tmp_path / "poster.jpg", 2400, 1350)


def _put(api: str, token: str | None, title: str, body: bytes, headers: dict[str, str],
         kind: str = "poster") -> httpx.Response:
    return call(api, "PUT", f"/v1/catalog/titles/{title}/artwork/{kind}", token,
                content=body, headers=headers)


def _path(url: str) -> str:
    return httpx.URL(url).path


def test_an_upload_becomes_three_sizes_served_for_the_cdn(
        api: str, services: Services, editor: str, jpeg: bytes, tmp_path: Path) -> None:
    title, _ = _movie(services)
    response = _put(api, editor, title, jpeg, JPEG)
    assert response.status_code == 200, response.text
    poster = response.json()["artwork"]["poster"]
    assert [(s["width"], s["height"]) for s in poster] == [(1920, 1080), (960, 540), (480, 270)]
    assert response.json()["revision"] == 3  # made, linked, artwork
    for size in poster:
        assert size["url"].startswith(services.settings.public_base_url)
        served = httpx.get(api + _path(size["url"]))
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["access-control-allow-origin"] == "*"
        (tmp_path / "served.jpg").write_bytes(served.content)
        assert probe_size(tmp_path / "served.jpg") == ("mjpeg", size["width"], size["height"])
    url = api + _path(poster[-1]["url"])
    whole = httpx.get(url)
    again = httpx.get(url, headers={"If-None-Match": whole.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    part = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert (part.status_code, part.content) == (206, whole.content[:100])
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
    assert httpx.get(url, headers={"Range": f"bytes={len(whole.content)}-"}).status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(whole.content))


def test_a_new_image_is_a_new_url_and_boxes_see_it(
        api: str, services: Services, editor: str, jpeg: bytes, tmp_path: Path) -> None:
    title, asset = _movie(services)
    first = _put(api, editor, title, jpeg, JPEG).json()["artwork"]["poster"]
    logo = make_image(tmp_path / "logo.png", 800, 200, alpha=True)
    changed = _put(api, editor, title, logo, PNG, kind="logo").json()["artwork"]
    assert changed["poster"] == first
    assert [(s["width"], s["height"]) for s in changed["logo"]] == [(480, 120)]
    assert changed["logo"][0]["url"].endswith(".480.png")
    other = make_image(tmp_path / "other.jpg", 1000, 1500)
    second = _put(api, editor, title, other, JPEG).json()["artwork"]["poster"]
    assert [(s["width"], s["height"]) for s in second] == [(960, 1440), (480, 720)]
    assert {s["url"] for s in second}.isdisjoint(s["url"] for s in first)
    # What a box or an edge still holds keeps working.
    assert httpx.get(api + _path(first[0]["url"])).status_code == 200
    box = household(services, AVC_BOX)
    entitle(services, box.account_id, asset)
    seen = call(api, "GET", f"/v1/titles/{title}", box.token).json()
    assert seen["artwork"] == {"logo": changed["logo"], "poster": second}
    assert call(api, "DELETE", f"/v1/catalog/titles/{title}/artwork/logo",
                editor).status_code == 204
    assert call(api, "DELETE", f"/v1/catalog/titles/{title}/artwork/logo",
                editor).status_code == 404
    assert "logo" not in call(api, "GET", f"/v1/titles/{title}", box.token).json()["artwork"]


def test_what_is_no_image_is_refused_with_a_clear_error(
        api: str, services: Services, editor: str, jpeg: bytes, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    title, _ = _movie(services)
    png = make_image(tmp_path / "small.png", 320, 180)
    secret = tmp_path / "secret.jpg"
    make_image(secret, 64, 64)
    cases = [
        (b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:1,\nhttp://127.0.0.1:1/x.jpg\n", JPEG, 415,
         "not a JPEG or PNG"),
        (b"\xff\xd8\xff\n#EXTM3U\n#EXTINF:1,\nfile:" + str(secret).encode() + b"\n", JPEG, 422,
         "not a readable JPG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", {"Content-Type": "image/svg+xml"}, 415,
         "image/jpeg or image/png"),
        (jpeg, {"Content-Type": "text/plain"}, 415, "image/jpeg or image/png"),
        (png, JPEG, 415, "a PNG image, sent as image/jpeg"),
        (jpeg[: len(jpeg) // 2], JPEG, 422, "damaged or truncated"),
        (png_claiming(8000, 8000), PNG, 422, "at most 40 megapixels"),
        (b"", JPEG, 400, "the body is empty"),
    ]
    for body, headers, status, message in cases:
        response = _put(api, editor, title, body, headers)
        assert response.status_code == status, (message, response.text)
        assert message in response.json()["error"]["message"]
        assert str(secret) not in response.text
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    assert _put(api, editor, title, jpeg, JPEG).status_code == 413
    streamed = call(api, "PUT", f"/v1/catalog/titles/{title}/artwork/poster", editor,
                    content=iter([jpeg[:800], jpeg[800:1600]]), headers=JPEG)
    assert streamed.status_code == 413
    assert call(api, "GET", f"/v1/catalog/titles/{title}", editor).json()["artwork"] == {}
    assert list(services.storage.list_keys("art/")) == []
    assert list((services.settings.work_dir / "artwork").iterdir()) == []


@pytest.mark.parametrize("kind", ["..%2F..%2Fetc", "Poster", "poster.jpg", "%2e%2e", "banner",
                                  "poster%00"])
def test_path_tricks_in_the_kind_find_nothing(api: str, services: Services, editor: str,
                                              jpeg: bytes, kind: str) -> None:
    title, _ = _movie(services)
    response = _put(api, editor, title, jpeg, JPEG, kind=kind)
    assert response.status_code == 404, response.text
    assert list(services.storage.list_keys("art/")) == []


def test_an_unknown_title_and_every_bad_token_are_refused(api: str, services: Services,
                                                          editor: str, jpeg: bytes) -> None:
    assert _put(api, editor, new_id(), jpeg, JPEG).status_code == 404
    title, _ = _movie(services)
    expired = services.signer.issue(["assets:write"], ttl_s=-120)
    for token in (None, expired, *forged_tokens(services, ["assets:write"])):
        assert _put(api, token, title, jpeg, JPEG).status_code == 401
    reader = services.signer.issue(["assets:read", "playback"])
    assert _put(api, reader, title, jpeg, JPEG).status_code == 403
    assert list(services.storage.list_keys("art/")) == []


@pytest.mark.parametrize("path", [
    "/art/{title}/poster.{digest}.480.gif", "/art/{title}/poster.{digest}.480.jpg",
    "/art/{title}/banner.{digest}.480.jpg", "/art/{title}/..%2Fposter.{digest}.480.jpg",
    "/art/{title}/poster.{digest}.0480.jpg", "/art/not-an-id/poster.{digest}.480.jpg",
])
def test_art_paths_that_name_nothing_are_404_briefly_cached(api: str, path: str) -> None:
    response = httpx.get(api + path.format(title=new_id(), digest="a" * 32))
    assert response.status_code == 404
    assert response.headers["cache-control"] == "public, max-age=10"
    assert response.json()["error"]["code"] == "not_found"
