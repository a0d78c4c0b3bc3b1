"""tus 1.0 at /v1/uploads over real HTTP (uvicorn, real Redis, SQLite, a folder):
the protocol's answers, bad input, ownership, and one asset per finished upload."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from stb_origin.accounts import packages
from stb_origin.app.sweeper import sweep_once
from stb_origin.assets.records import Asset
from stb_origin.ingest.tus_records import TusUpload
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage.base import PARTIAL_PREFIX
from tests.support.tus import OCTETS, TUS, Tus, master_bytes, metadata

MB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(max_upload_bytes=64 * MB, uploads_per_user=3)


@pytest.fixture
def tus(api: str, services: Services) -> Tus:
    return Tus(api, services.signer.issue(["assets:write"], subject="editor-1"))


def _assets(services: Services) -> list[Asset]:
    with services.db.session() as session:
        return list(session.query(Asset))


def _partials(services: Services) -> list[str]:
    root = services.settings.data_dir / "storage"
    return [p.name for p in root.rglob(f"{PARTIAL_PREFIX}*")] if root.exists() else []


def _row(services: Services, url: str) -> TusUpload | None:
    with services.db.session() as session:
        return session.get(TusUpload, url.rsplit("/", 1)[1])


def test_options_tells_the_capabilities_without_a_token(api: str) -> None:
    response = httpx.options(api + "/v1/uploads", headers={
        "Origin": "https://console.example", "Access-Control-Request-Method": "PATCH"})
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "termination", "expiration", "checksum"}
    assert response.headers["tus-max-size"] == str(64 * MB)
    assert {"sha1", "sha256"} <= set(response.headers["tus-checksum-algorithm"].split(","))
    assert response.headers["access-control-allow-origin"] == "*"
    assert "PATCH" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "upload-offset", "upload-checksum", "tus-resumable"} <= {
        h.strip() for h in allowed.split(",")}


def test_an_upload_in_pieces_becomes_one_queued_asset(tus: Tus, services: Services) -> None:
    data = master_bytes(3 * MB + 123)
    created = tus.create(len(data), metadata(filename="Evening news.mp4", title="News",
                                             filetype="video/mp4"))
    assert created.status_code == 201
    assert created.headers["tus-resumable"] == "1.0.0"
    assert created.headers["location"].startswith("/v1/uploads/")
    assert "upload-expires" in created.headers
    assert "location" in created.headers["access-control-expose-headers"].lower()
    url = tus.url(created)

    head = tus.head(url)
    assert head.status_code == 200
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == (
        "0", str(len(data)))
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["upload-metadata"] == created.request.headers["upload-metadata"]

    first = tus.patch(url, 0, data[:MB])
    assert first.status_code == 204 and first.headers["upload-offset"] == str(MB)
    assert "stb-asset" not in first.headers and _assets(services) == []
    assert tus.head(url).headers["upload-offset"] == str(MB)

    last = tus.send(url, data, 2 * MB)
    asset_id = last.headers["stb-asset"]
    assert last.headers["upload-offset"] == str(len(data))
    [asset] = _assets(services)
    assert (asset.id, asset.title, asset.status, asset.source_size) == (
        asset_id, "News", "queued", len(data))
    assert services.storage.get_bytes(asset.source_key) == data
    assert asset.source_key.endswith("/source.mp4")
    assert services.queue.job_ids == [f"pipeline-{asset_id}-1"]
    assert _partials(services) == []
    assert tus.head(url).headers["stb-asset"] == asset_id
    assert httpx.get(f"{tus.base_url}/v1/assets/{asset_id}", headers={
        "Authorization": f"Bearer {services.signer.issue(['assets:read'])}"}).json()[
        "status"] == "queued"


def test_creation_with_upload_takes_the_whole_file_at_once(tus: Tus,
                                                          services: Services) -> None:
    data = master_bytes(200_000)
    created = tus.create(len(data), metadata(filename="a.mkv"), body=data)
    assert created.status_code == 201, created.text
    assert created.headers["upload-offset"] == str(len(data))
    [asset] = _assets(services)
    assert created.headers["stb-asset"] == asset.id
    assert asset.title == "a" and asset.source_key.endswith("/source.mkv")


def test_creation_with_part_of_the_file_then_patches(tus: Tus, services: Services) -> None:
    data = master_bytes(100_000)
    created = tus.create(len(data), body=data[:10_000])
    assert created.headers["upload-offset"] == "10000"
    tus.send(tus.url(created), data, 50_000)
    [asset] = _assets(services)
    assert services.storage.get_bytes(asset.source_key) == data


def test_a_retried_final_patch_makes_no_second_asset(tus: Tus, services: Services) -> None:
    data = master_bytes(50_000)
    url = tus.new(len(data))
    done = tus.patch(url, 0, data)
    again = tus.patch(url, len(data), b"")  # the client lost the first answer
    assert again.status_code == 204
    assert again.headers["stb-asset"] == done.headers["stb-asset"]
    replayed = tus.patch(url, 0, data)  # or replays it whole
    assert replayed.status_code == 409
    assert replayed.headers["upload-offset"] == str(len(data))
    assert len(_assets(services)) == 1
    assert len(services.queue.job_ids) == 1


def test_a_wrong_offset_is_409_with_the_right_one(tus: Tus) -> None:
    data = master_bytes(20_000)
    url = tus.new(len(data))
    tus.patch(url, 0, data[:5000])
    for offset in (0, 4999, 5001):
        response = tus.patch(url, offset, data[offset:offset + 100])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "offset_mismatch"
        assert response.headers["upload-offset"] == "5000"
    assert tus.head(url).headers["upload-offset"] == "5000"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_checksums_keep_a_matching_chunk_and_discard_another(tus: Tus, services: Services,
                                                              algorithm: str) -> None:
    data = master_bytes(30_000)
    url = tus.new(len(data))

    def checksum(chunk: bytes) -> str:
        return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, chunk).digest()).decode()}"

    good = tus.patch(url, 0, data[:10_000], **{"Upload-Checksum": checksum(data[:10_000])})
    assert good.status_code == 204 and good.headers["upload-offset"] == "10000"
    bad = tus.patch(url, 10_000, data[10_000:20_000],
                    **{"Upload-Checksum": checksum(b"something else")})
    assert bad.status_code == 460
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert tus.head(url).headers["upload-offset"] == "10000"
    tus.patch(url, 10_000, data[10_000:], **{"Upload-Checksum": checksum(data[10_000:])})
    [asset] = _assets(services)
    assert services.storage.get_bytes(asset.source_key) == data


@pytest.mark.parametrize("value, code", [
    ("md5 1B2M2Y8AsgTpgAmY7PhCfg==", "unsupported_checksum"),
    ("crc32 AAAAAA==", "unsupported_checksum"),
    ("sha1 not-base64!", "bad_request"),
    ("sha1 " + base64.b64encode(b"short").decode(), "bad_request"),
    ("sha256", "bad_request"),
])
def test_bad_checksum_headers_are_400(tus: Tus, value: str, code: str) -> None:
    url = tus.new(1000)
    response = tus.patch(url, 0, master_bytes(1000), **{"Upload-Checksum": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert tus.head(url).headers["upload-offset"] == "0"


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0", ""])
def test_another_protocol_version_is_412(api: str, services: Services,
                                         version: str | None) -> None:
    headers = {"Authorization": f"Bearer {services.signer.issue(['assets:write'])}",
               "Upload-Length": "100"}
    if version is not None:
        headers["Tus-Resumable"] = version
    response = httpx.post(api + "/v1/uploads", headers=headers)
    assert response.status_code == 412
    assert response.headers["tus-version"] == "1.0.0"
    assert response.json()["error"]["code"] == "unsupported_tus_version"


@pytest.mark.parametrize("length, status, code", [
    (str(64 * MB + 1), 413, "payload_too_large"),
    (str(10**18), 413, "payload_too_large"),
    ("99999999999999999999999", 400, "bad_request"),
    ("-1", 400, "bad_request"),
    ("1e6", 400, "bad_request"),
    ("", 400, "bad_request"),
    ("0", 400, "empty_file"),
])
def test_bad_or_huge_lengths_are_refused_at_creation(tus: Tus, services: Services,
                                                     length: str, status: int,
                                                     code: str) -> None:
    response = httpx.post(tus.base_url + "/v1/uploads", headers={
        **TUS, **tus.auth, "Upload-Length": length})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers["tus-resumable"] == "1.0.0"
    with services.db.session() as session:
        assert session.query(TusUpload).count() == 0


def test_deferred_length_is_not_offered(tus: Tus) -> None:
    response = httpx.post(tus.base_url + "/v1/uploads",
                          headers={**TUS, **tus.auth, "Upload-Defer-Length": "1"})
    assert response.status_code == 400


@pytest.mark.parametrize("header", [
    "filename not*base64",
    "filename " + base64.b64encode(b"\xff\xfe").decode(),  # not UTF-8
    "filename YQ==,filename Yg==",  # twice
    ",filename YQ==",  # an empty pair
    "filename " + base64.b64encode(b"a\x00b.mp4").decode(),
    "title " + base64.b64encode(b"x" * 501).decode(),
    "packages " + base64.b64encode(",".join(f"p{i}" for i in range(21)).encode()).decode(),
    "x" * 5000,
])
def test_bad_metadata_is_400(tus: Tus, header: str) -> None:
    response = tus.create(100, header)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_metadata"


@pytest.mark.parametrize("filename, stored, title", [
    ("../../etc/passwd.mp4", "source.mp4", "passwd"),
    ("..\\..\\windows\\evil.MOV", "source.mov", "evil"),
    ("/abs/path/clip.ts", "source.ts", "clip"),
    ("..", "source.bin", ""),
    ("clip.mp4/../../x", "source.bin", "x"),
    ("name.<script>", "source.bin", "name"),
])
def test_path_tricks_in_the_file_name_go_nowhere(tus: Tus, services: Services, filename: str,
                                                 stored: str, title: str) -> None:
    data = master_bytes(5000)
    created = tus.create(len(data), metadata(filename=filename), body=data)
    assert created.status_code == 201, created.text
    [asset] = _assets(services)
    assert asset.source_key == f"sources/{asset.id}/{stored}"
    assert asset.title == title
    assert services.storage.get_bytes(asset.source_key) == data


def test_packages_in_the_metadata_are_joined_and_unknown_ones_refused(
        tus: Tus, services: Services) -> None:
    with services.db.session() as session:
        packages.create_package(session, "premium")
    refused = tus.create(100, metadata(packages="premium,nosuch"))
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unknown_package"
    data = master_bytes(1000)
    tus.create(len(data), metadata(packages="premium"), body=data)
    [asset] = _assets(services)
    with services.db.session() as session:
        assert [row.asset_id for row in packages.page_assets(session, "premium", 10, None)] == [
            asset.id]


def test_a_file_that_is_no_video_is_refused_at_its_first_bytes(tus: Tus,
                                                               services: Services) -> None:
    url = tus.new(10 * MB)
    response = tus.patch(url, 0, b"#EXTM3U\n" + b"x" * 5000)
    assert response.status_code == 415
    assert tus.head(url).status_code == 404
    assert _partials(services) == [] and _assets(services) == []


def test_a_body_past_the_length_is_413_and_discarded(tus: Tus) -> None:
    url = tus.new(1000)
    response = tus.patch(url, 0, master_bytes(1001))
    assert response.status_code == 413
    assert tus.head(url).headers["upload-offset"] == "0"


def test_a_patch_of_another_type_is_415(tus: Tus) -> None:
    url = tus.new(1000)
    response = httpx.patch(url, content=master_bytes(1000), headers={
        **TUS, **tus.auth, "Upload-Offset": "0", "Content-Type": "application/octet-stream"})
    assert response.status_code == 415


def test_another_users_upload_is_404_to_them(tus: Tus, services: Services) -> None:
    data = master_bytes(2000)
    url = tus.new(len(data))
    other = Tus(tus.base_url, services.signer.issue(["assets:write"], subject="editor-2"))
    assert other.head(url).status_code == 404
    assert other.patch(url, 0, data).status_code == 404
    assert other.delete(url).status_code == 404
    assert tus.head(url).headers["upload-offset"] == "0"
    unknown = url.rsplit("/", 1)[0] + "/" + "0" * 32
    assert tus.head(unknown).status_code == 404
    assert tus.head(url.rsplit("/", 1)[0] + "/..%2F..%2Fetc").status_code == 404


@pytest.mark.parametrize("token, code", [(None, "unauthorized"), ("forged", "invalid_token")])
def test_requests_without_a_valid_token_are_401(tus: Tus, token: str | None,
                                                code: str) -> None:
    url = tus.new(1000)
    anonymous = Tus(tus.base_url, token)
    for response in (anonymous.create(1000), anonymous.head(url),
                     anonymous.patch(url, 0, b"x"), anonymous.delete(url)):
        assert response.status_code == 401
        if response.request.method != "HEAD":
            assert response.json()["error"]["code"] == code


def test_expired_and_reader_tokens_are_refused(tus: Tus, services: Services) -> None:
    expired = Tus(tus.base_url, services.signer.issue(["assets:write"], ttl_s=-120))
    assert expired.create(1000).status_code == 401
    reader = Tus(tus.base_url, services.signer.issue(["assets:read"]))
    assert reader.create(1000).status_code == 403


def test_termination_deletes_the_bytes(tus: Tus, services: Services) -> None:
    url = tus.new(10_000)
    tus.patch(url, 0, master_bytes(10_000)[:6000])
    assert len(_partials(services)) == 1
    response = tus.delete(url)
    assert response.status_code == 204
    assert _partials(services) == []
    assert tus.head(url).status_code == 404
    assert tus.patch(url, 6000, b"x").status_code == 404


def test_an_abandoned_upload_expires_and_its_bytes_go(tus: Tus, services: Services) -> None:
    url = tus.new(10_000)
    expires = tus.patch(url, 0, master_bytes(10_000)[:4000]).headers["upload-expires"]
    when = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert when > datetime.now(UTC) + timedelta(hours=23)
    with services.db.session() as session:
        row = session.get(TusUpload, url.rsplit("/", 1)[1])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert tus.head(url).status_code == 410
    assert tus.patch(url, 4000, b"x").status_code == 410
    sweep_once(services, datetime.now(UTC))
    assert _partials(services) == [] and _row(services, url) is None
    assert tus.head(url).status_code == 404


def test_the_sweep_keeps_live_uploads_and_forgets_finished_ones_later(
        tus: Tus, services: Services) -> None:
    live = tus.new(10_000)
    tus.patch(live, 0, master_bytes(10_000)[:3000])
    data = master_bytes(2000)
    finished = tus.url(tus.create(len(data), body=data))
    sweep_once(services, datetime.now(UTC))
    assert tus.head(live).headers["upload-offset"] == "3000"
    assert "stb-asset" in tus.head(finished).headers
    sweep_once(services, datetime.now(UTC) + timedelta(days=2))
    assert _row(services, live) is None and _row(services, finished) is None
    [asset] = _assets(services)  # the asset stays
    assert services.storage.get_bytes(asset.source_key) == data


def test_a_user_has_a_limited_number_of_unfinished_uploads(tus: Tus) -> None:
    urls = [tus.new(1000) for _ in range(3)]
    refused = tus.create(1000)
    assert refused.status_code == 429
    assert "DELETE" in refused.json()["error"]["message"]
    tus.delete(urls[0])
    assert tus.create(1000).status_code == 201


def test_a_second_writer_is_locked_out_while_one_writes(tus: Tus) -> None:
    data = master_bytes(100_000)
    url = tus.new(len(data))
    port = int(tus.base_url.rsplit(":", 1)[1])
    path = url.removeprefix(tus.base_url)
    # The first writer sends its headers and a part of its body, then waits.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
        first.sendall(f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: {tus.auth['Authorization']}\r\n"
                      f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                      f"Content-Type: {OCTETS['Content-Type']}\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:40_000])
        for _ in range(100):
            second = tus.patch(url, 0, data)
            if second.status_code == 423:
                break
        assert second.status_code == 423
        assert second.json()["error"]["code"] == "upload_locked"
        assert tus.delete(url).status_code == 423
        first.sendall(data[40_000:])
        assert b" 204 " in first.recv(4096).split(b"\r\n")[0] + b" "
    assert tus.head(url).headers["upload-offset"] == str(len(data))


def test_a_cut_body_keeps_what_arrived(tus: Tus, services: Services) -> None:
    data = master_bytes(4 * MB)
    url = tus.new(len(data))
    port = int(tus.base_url.rsplit(":", 1)[1])
    sent = 5 * MB // 2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as cut:
        cut.sendall(f"PATCH {url.removeprefix(tus.base_url)} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: {tus.auth['Authorization']}\r\n"
                    f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                    f"Content-Type: {OCTETS['Content-Type']}\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:sent])
        # Cut once the server has written some of it (what it had not read yet is lost).
        _wait(lambda: _partial_size(services) >= 2 * MB, "the bytes to reach the file")
    _wait(lambda: tus.head(url).headers["upload-offset"] != "0", "the server to see the cut")
    kept = int(tus.head(url).headers["upload-offset"])
    assert 2 * MB <= kept <= sent
    tus.send(url, data, MB)
    [asset] = _assets(services)
    assert services.storage.get_bytes(asset.source_key) == data


def _partial_size(services: Services) -> int:
    root = services.settings.data_dir / "storage"
    return sum(p.stat().st_size for p in root.rglob(f"{PARTIAL_PREFIX}*"))


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_errors_carry_the_tus_and_cors_headers(tus: Tus) -> None:
    response = tus.head(tus.base_url + "/v1/uploads/" + "0" * 32)
    assert response.status_code == 404
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "upload-offset" in response.headers["access-control-expose-headers"].lower()
