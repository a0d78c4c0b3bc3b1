"""Who may fetch /hls from the origin: the CDN's X-Origin-Secret and signed URLs,
over a real server, with the origin's clock in the test's hands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from stb_origin.app import create_app
from stb_origin.origin import build_app
from stb_origin.origin.access import HlsAccess
from stb_origin.origin.urlsign import UrlSigner
from stb_origin.services import Services
from stb_origin.storage import LocalStorage
from tests.drm.support import new_asset
from tests.origin.test_masters import MASTER
from tests.support.http import run_server

ASSET = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32
SEGMENT = b"segment-bytes" * 10
NOW = 1_900_000_000.0
CURRENT, PREVIOUS = UrlSigner(("new-url-secret", "old-url-secret")), UrlSigner(("old-url-secret",))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    store = LocalStorage(tmp_path / "store")
    for asset in (ASSET, OTHER):
        store.put_bytes(f"hls/{asset}/v1/720p/seg_00001.m4s", SEGMENT, "video/iso.segment")
        store.put_bytes(f"hls/{asset}/master.m3u8", MASTER, "application/vnd.apple.mpegurl")
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@contextmanager
def _serve(storage: LocalStorage, access: HlsAccess) -> Iterator[httpx.Client]:
    with run_server(build_app(storage, access=access)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
def guarded(storage: LocalStorage) -> Iterator[httpx.Client]:
    with _serve(storage, HlsAccess(origin_secrets=("cdn-now", "cdn-before"))) as client:
        yield client


@pytest.fixture
def signed(storage: LocalStorage, clock: Clock) -> Iterator[httpx.Client]:
    with _serve(storage, HlsAccess(url_signer=CURRENT, clock=clock)) as client:
        yield client


def _assert_forbidden(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert SEGMENT not in response.content and b"#EXTM3U" not in response.content
    message: str = response.json()["error"]["message"]
    return message


# -- X-Origin-Secret -----------------------------------------------------------------------


def test_only_the_cdn_may_fetch_when_an_origin_secret_is_set(guarded: httpx.Client) -> None:
    path = f"/hls/{ASSET}/v1/720p/seg_00001.m4s"
    for sent in (None, "", "wrong", "cdn-now-and-more", "CDN-NOW"):
        headers = {"X-Origin-Secret": sent} if sent is not None else {}
        assert "CDN" in _assert_forbidden(guarded.get(path, headers=headers))
    assert guarded.get(path, headers={"X-Origin-Secret": "cdn-now"}).content == SEGMENT
    # Rotation: the CDN may still send the previous secret for a while.
    assert guarded.get(path, headers={"X-Origin-Secret": "cdn-before"}).content == SEGMENT
    _assert_forbidden(guarded.options(path))


def test_a_non_ascii_origin_secret_is_compared_as_bytes(storage: LocalStorage) -> None:
    with _serve(storage, HlsAccess(origin_secrets=("sécret",))) as client:
        path = f"/hls/{ASSET}/master.m3u8"
        assert client.get(path, headers={"X-Origin-Secret": "sécret".encode()}).status_code == 200
        _assert_forbidden(client.get(path, headers={"X-Origin-Secret": b"s\xe9cret"}))


def test_keys_and_the_api_do_not_need_the_origin_secret(services: Services) -> None:
    services.settings = services.settings.with_(origin_secrets=("cdn-now",))
    asset_id, key = new_asset(services)
    services.storage.put_bytes(f"hls/{asset_id}/master.m3u8", MASTER, "x/y")
    token = services.signer.issue(["playback"])
    with run_server(create_app(services)) as api:
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{api}/keys/{asset_id}/{key.key_id}", headers=auth).content == key.key
        assert httpx.get(f"{api}/v1/playback/{asset_id}", headers=auth).status_code == 200
        _assert_forbidden(httpx.get(f"{api}/hls/{asset_id}/master.m3u8"))
        assert httpx.get(f"{api}/hls/{asset_id}/master.m3u8",
                         headers={"X-Origin-Secret": "cdn-now"}).status_code == 200


# -- signed URLs -------------------------------------------------------------------------


def test_a_signed_url_opens_the_asset_until_it_expires(signed: httpx.Client,
                                                       clock: Clock) -> None:
    master = CURRENT.sign(f"/hls/{ASSET}/master.m3u8", int(NOW) + 60)
    response = signed.get(master)
    assert response.status_code == 200 and response.content == MASTER
    # Relative URIs in the playlists resolve under the same token.
    segment = str(httpx.URL(master).join("v1/720p/seg_00001.m4s"))
    assert signed.get(segment).content == SEGMENT
    clock.now = NOW + 60
    assert "expired" in _assert_forbidden(signed.get(master))
    assert "expired" in _assert_forbidden(signed.get(segment))


def test_a_signed_form_redirects_under_its_token(signed: httpx.Client) -> None:
    asked = CURRENT.sign(f"/hls/{ASSET}/master.h1000.m3u8", int(NOW) + 60)
    response = signed.get(asked)
    assert response.status_code == 301
    target = httpx.URL(asked).join(response.headers["location"])
    assert target.path == CURRENT.sign(f"/hls/{ASSET}/master.h720.m3u8", int(NOW) + 60)
    assert signed.get(target).status_code == 200


@pytest.mark.parametrize(("case", "reason"), [
    ("unsigned", "unsigned"), ("forged", "forged"), ("foreign secret", "forged"),
    ("wrong prefix", "wrong_prefix"), ("malformed", "malformed"),
])
def test_anything_but_a_valid_signed_url_is_403(signed: httpx.Client, case: str,
                                                reason: str) -> None:
    good = CURRENT.sign(f"/hls/{ASSET}/master.m3u8", int(NOW) + 60)
    token = good.split("/")[2]
    path = {
        "unsigned": f"/hls/{ASSET}/master.m3u8",
        "forged": good.replace(f"exp={int(NOW) + 60}", f"exp={int(NOW) + 99999}"),
        "foreign secret": UrlSigner(("guess",)).sign(f"/hls/{ASSET}/master.m3u8",
                                                     int(NOW) + 60),
        "wrong prefix": f"/hls/{token}/{OTHER}/master.m3u8",
        "malformed": f"/hls/st=exp=1/{ASSET}/master.m3u8",
    }[case]
    assert reason in _assert_forbidden(signed.get(path))


def test_urls_signed_with_the_previous_secret_still_play(signed: httpx.Client) -> None:
    old = PREVIOUS.sign(f"/hls/{ASSET}/v1/720p/seg_00001.m4s", int(NOW) + 60)
    assert signed.get(old).content == SEGMENT


def test_with_signing_off_both_spellings_are_served(storage: LocalStorage) -> None:
    # So that the CDN and the origin may switch signing on in either order.
    with _serve(storage, HlsAccess()) as client:
        assert client.get(f"/hls/{ASSET}/master.m3u8").status_code == 200
        signed_url = CURRENT.sign(f"/hls/{ASSET}/master.h720.m3u8", 1)
        assert client.get(signed_url).status_code == 200


def test_both_checks_together(storage: LocalStorage, clock: Clock) -> None:
    access = HlsAccess(origin_secrets=("cdn-now",), url_signer=CURRENT, clock=clock)
    with _serve(storage, access) as client:
        url = CURRENT.sign(f"/hls/{ASSET}/master.m3u8", int(NOW) + 60)
        _assert_forbidden(client.get(url))
        _assert_forbidden(client.get(f"/hls/{ASSET}/master.m3u8",
                                     headers={"X-Origin-Secret": "cdn-now"}))
        assert client.get(url, headers={"X-Origin-Secret": "cdn-now"}).status_code == 200
