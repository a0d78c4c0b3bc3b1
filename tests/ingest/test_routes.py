"""The ingest API over real HTTP: auth, bad input, listing, deletion."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stb_origin import eventlog, pipeline
from stb_origin.accounts import entitlements, packages
from stb_origin.accounts.models import Account, PackageAsset
from stb_origin.assets.records import Asset
from stb_origin.services import Services
from tests.support.media import make_clip


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def writer(services: Services) -> str:
    return services.signer.issue(["assets:write", "assets:read"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=1, size="320x180")


def _post(api: str, token: str | None, files=None, data=None, content=None,  # type: ignore[no-untyped-def]
          headers=None) -> httpx.Response:
    all_headers = {**(headers or {}), **(_auth(token) if token else {})}
    return httpx.post(f"{api}/v1/assets", files=files, data=data, content=content,
                      headers=all_headers, timeout=30)


def _left_behind(services: Services) -> list[str]:
    """Anything an upload left in storage or the upload folder."""
    uploads = services.settings.work_dir / "uploads"
    leftovers = [p.name for p in uploads.iterdir()] if uploads.exists() else []
    return leftovers + list(services.storage.list_keys("sources/"))


def test_upload_answers_202_with_location_and_queues_one_job(api, services, writer, clip):
    response = _post(api, writer, files={"file": ("clip.mp4", clip.read_bytes())},
                     data={"title": "Evening news"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/assets/{body['id']}"
    assert body["title"] == "Evening news"
    assert body["status"] == "queued" and body["progress"] == 0 and body["error"] is None
    assert body["playback"] == {"hls": f"/hls/{body['id']}/master.m3u8"}
    assert services.queue.job_ids == [f"pipeline-{body['id']}-1"]
    source = services.storage.get_bytes(f"sources/{body['id']}/source.mp4")
    assert source == clip.read_bytes()
    assert not list((services.settings.work_dir / "uploads").iterdir())


def test_title_defaults_to_the_file_name(api, writer, clip):
    response = _post(api, writer, files={"file": ("Match of the day.mp4", clip.read_bytes())})
    assert response.json()["title"] == "Match of the day"


@pytest.mark.parametrize("token, status, code", [
    (None, 401, "unauthorized"),
    ("not-a-jwt", 401, "invalid_token"),
])
def test_upload_without_a_valid_token_is_refused(api, services, clip, token, status, code):
    response = _post(api, token, files={"file": ("clip.mp4", clip.read_bytes())})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "www-authenticate" in response.headers
    assert _left_behind(services) == []


def test_expired_and_foreign_tokens_are_refused(api, services, clip, tmp_path):
    from stb_origin.auth.tokens import load_signer
    from stb_origin.migrations import open_database
    from stb_origin.settings import Settings

    expired = services.signer.issue(["assets:write"], ttl_s=-120)
    other = Settings(data_dir=tmp_path / "other")
    foreign = load_signer(other, open_database(other.resolved_database_url)).issue(
        ["assets:write"])
    for token in (expired, foreign):
        response = _post(api, token, files={"file": ("clip.mp4", clip.read_bytes())})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_token"


def test_upload_needs_the_write_scope(api, services, clip):
    reader = services.signer.issue(["assets:read", "playback"])
    response = _post(api, reader, files={"file": ("clip.mp4", clip.read_bytes())})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.parametrize("name, content, status, code", [
    ("empty.mp4", b"", 400, "empty_file"),
    ("notes.txt", b"these are not the frames you are looking for\n" * 50, 415,
     "unsupported_media_type"),
    ("evil.m3u8", b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", 415,
     "unsupported_media_type"),
    ("list.ffconcat", b"ffconcat version 1.0\nfile '/etc/passwd'\n", 415,
     "unsupported_media_type"),
    ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, 415, "unsupported_media_type"),
])
def test_bad_files_get_a_clear_error_and_leave_nothing(api, services, writer, name, content,
                                                       status, code):
    response = _post(api, writer, files={"file": (name, content)})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert _left_behind(services) == []
    with services.db.session() as session:
        assert session.query(Asset).count() == 0


def test_form_without_a_file_field(api, writer):
    response = _post(api, writer, files={"title": (None, "no file")})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "missing_file",
        "message": 'missing required field "file"; allowed: file, packages, title'}


def _create_packages(services: Services, *names: str) -> None:
    with services.db.session() as session:
        for name in names:
            packages.create_package(session, name)


def _members(services: Services, asset_id: str) -> set[str]:
    with services.db.session() as session:
        return {link.package_name for link in session.query(PackageAsset).filter_by(
            asset_id=asset_id)}


def test_an_upload_joins_the_packages_it_names(api, services, writer, clip):
    _create_packages(services, "dev", "premium", "kids")
    response = _post(api, writer, files=[("file", ("clip.mp4", clip.read_bytes())),
                                         ("packages", (None, "dev")),
                                         ("packages", (None, "premium"))])
    assert response.status_code == 202, response.text
    asset_id = response.json()["id"]
    assert _members(services, asset_id) == {"dev", "premium"}
    # So a box of an account entitled to "dev" may fetch its keys once it is ready.
    with services.db.session() as session:
        account = Account()
        session.add(account)
        session.flush()
        entitlements.grant(session, account.id, "dev")
        assert entitlements.is_entitled(session, account.id, asset_id, datetime.now(UTC))
    plain = _post(api, writer, files={"file": ("clip.mp4", clip.read_bytes())})
    assert _members(services, plain.json()["id"]) == set()


def test_an_unknown_package_is_named_and_nothing_is_kept(api, services, writer, clip):
    _create_packages(services, "dev")
    response = _post(api, writer, files=[("file", ("clip.mp4", clip.read_bytes())),
                                         ("packages", (None, "dev")),
                                         ("packages", (None, "gold")),
                                         ("packages", (None, "<b>x</b>"))])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_package"
    assert 'no such package: "<b>x</b>", "gold"' in error["message"]
    assert _left_behind(services) == []
    assert services.queue.job_ids == []
    with services.db.session() as session:
        assert session.query(Asset).count() == 0 and session.query(PackageAsset).count() == 0


def test_an_unknown_form_field_is_refused_with_the_allowed_ones(api, services, writer, clip):
    _create_packages(services, "dev")
    response = _post(api, writer, files=[("package", (None, "dev")),
                                         ("file", ("clip.mp4", clip.read_bytes()))])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        'unknown field "package"; allowed: file, packages, title')
    assert _left_behind(services) == [] and services.queue.job_ids == []


def test_body_that_is_not_multipart(api, writer, clip):
    response = _post(api, writer, content=clip.read_bytes(),
                     headers={"Content-Type": "video/mp4"})
    assert response.status_code == 415


def test_truncated_multipart_body(api, writer):
    body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nabc"
    response = _post(api, writer, content=body,
                     headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 400


def test_over_the_limit_is_413_while_streaming(services, writer, tmp_path):
    from stb_origin.app import create_app
    from tests.support.http import run_server

    services.settings = services.settings.with_(max_upload_bytes=100_000)
    big = b"\x00\x00\x00\x20ftypisom" + b"\x00" * 300_000

    def chunks():  # type: ignore[no-untyped-def]
        # No Content-Length: the limit must hold while the body streams.
        yield (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.mp4\"\r\n"
               b"Content-Type: video/mp4\r\n\r\n")
        for start in range(0, len(big), 16_384):
            yield big[start:start + 16_384]
        yield b"\r\n--B--\r\n"

    with run_server(create_app(services)) as api:
        declared = _post(api, writer, files={"file": ("x.mp4", big)})
        streamed = _post(api, writer, content=chunks(),
                         headers={"Content-Type": "multipart/form-data; boundary=B"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert _left_behind(services) == []


def test_get_list_and_paginate(api, services, writer, clip):
    ids = []
    first: dict[str, object] = {}
    for n in range(5):
        response = _post(api, writer, files={"file": ("c.mp4", clip.read_bytes())},
                         data={"title": f"clip {n}"})
        ids.append(response.json()["id"])
        first = first or response.json()
        time.sleep(0.01)
    got = httpx.get(f"{api}/v1/assets/{ids[0]}", headers=_auth(writer), timeout=10)
    assert got.status_code == 200 and got.json()["title"] == "clip 0"
    # The same instant, spelt the same way (with its offset), in every answer.
    assert got.json()["created_at"] == first["created_at"]
    assert datetime.fromisoformat(got.json()["created_at"]).utcoffset() == timedelta(0)

    seen: list[str] = []
    url: str | None = "/v1/assets?limit=2"
    while url:
        page = httpx.get(api + url, headers=_auth(writer), timeout=10).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        url = page["next"]
    assert seen == list(reversed(ids)), "newest first, each exactly once"


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "limit=abc"])
def test_bad_page_sizes(api, writer, query):
    response = httpx.get(f"{api}/v1/assets?{query}", headers=_auth(writer), timeout=10)
    assert response.status_code == 400


def test_an_unknown_cursor_is_refused_not_restarted(api, writer):
    # Starting over silently would send a client paging round in circles; every
    # list answers this the same way (db.paging).
    response = httpx.get(f"{api}/v1/assets?after={'0' * 32}", headers=_auth(writer), timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "bad_request", "message": "after: no such item"}


def test_unknown_asset_is_404(api, writer):
    response = httpx.get(f"{api}/v1/assets/{'0' * 32}", headers=_auth(writer), timeout=10)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such asset"}}


def test_reading_needs_the_read_scope(api, services):
    player = services.signer.issue(["playback"])
    response = httpx.get(f"{api}/v1/assets", headers=_auth(player), timeout=10)
    assert response.status_code == 403


def test_delete_removes_source_and_record(api, services, writer, clip):
    asset_id = _post(api, writer, files={"file": ("c.mp4", clip.read_bytes())}).json()["id"]
    response = httpx.delete(f"{api}/v1/assets/{asset_id}", headers=_auth(writer), timeout=10)
    assert response.status_code == 204
    assert list(services.storage.list_keys(f"sources/{asset_id}/")) == []
    again = httpx.delete(f"{api}/v1/assets/{asset_id}", headers=_auth(writer), timeout=10)
    assert again.status_code == 404


def test_a_failed_asset_retried_after_its_cause_is_fixed_turns_ready(api, services, writer,
                                                                     clip):
    asset_id = _post(api, writer, files={"file": ("clip.mp4", clip.read_bytes())}).json()["id"]
    source = f"sources/{asset_id}/source.mp4"
    services.storage.put_bytes(source, b"\x00" * 4096, "video/mp4")  # what fails it
    services.queue.empty()  # as a worker takes the job
    assert pipeline.process(services, asset_id) == "failed"
    services.storage.put_bytes(source, clip.read_bytes(), "video/mp4")  # the cause fixed

    retried = httpx.post(f"{api}/v1/assets/{asset_id}/retry", headers=_auth(writer))
    assert retried.status_code == 202, retried.text
    assert retried.headers["location"] == f"/v1/assets/{asset_id}"
    body = retried.json()
    assert (body["status"], body["attempt"], body["error"]) == ("queued", 1, None)
    assert services.queue.job_ids == [f"pipeline-{asset_id}-1"]
    events = [eventlog.decode(offset, fields).data
              for offset, fields in services.redis.xrange(eventlog.STREAM)]
    assert {"asset": asset_id, "status": "queued", "progress": 0, "error": None} in events
    assert pipeline.process(services, asset_id) == "ready"


def test_only_a_failed_asset_is_retried(api, services, writer, clip):
    asset_id = _post(api, writer, files={"file": ("clip.mp4", clip.read_bytes())}).json()["id"]
    refused = httpx.post(f"{api}/v1/assets/{asset_id}/retry", headers=_auth(writer))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_failed"
    assert "the asset is queued" in refused.json()["error"]["message"]
    assert services.queue.job_ids == [f"pipeline-{asset_id}-1"], "nothing queued twice"
    missing = httpx.post(f"{api}/v1/assets/{'0' * 32}/retry", headers=_auth(writer))
    assert missing.status_code == 404
    reader = services.signer.issue(["assets:read"])
    assert httpx.post(f"{api}/v1/assets/{asset_id}/retry",
                      headers=_auth(reader)).status_code == 403
    assert httpx.post(f"{api}/v1/assets/{asset_id}/retry").status_code == 401
    assert httpx.post(f"{api}/v1/assets/..%2f..%2fetc/retry",
                      headers=_auth(writer)).status_code == 404
