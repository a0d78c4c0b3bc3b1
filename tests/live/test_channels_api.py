"""The channels API over real HTTP: the round trip, every refusal, who may call it, a
running runner following a change and letting a deleted channel go without leaving
anything behind, and keys following the channel's packages."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from stb_origin.accounts import entitlements, packages
from stb_origin.accounts.models import PackageChannel
from stb_origin.assets.channels import Channel
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.guide.models import ChannelMapping
from stb_origin.live import encoder, urls
from stb_origin.live.index import LiveSegment
from stb_origin.services import Services
from stb_origin.settings import Settings
from stb_origin.storage.layout import asset_prefix
from stb_origin.web.openapi import LADDER_HEIGHTS
from tests.conftest import require_tools
from tests.drm.support import household
from tests.live.test_runner import holder, listed, start_runner
from tests.support import live
from tests.support.logs import captured
from tests.support.workers import logs

UDP = "udp://127.0.0.1:5000"
BOTH_ENGINES = pytest.mark.parametrize("settings", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """SQLite, or PostgreSQL where a test asks (``BOTH_ENGINES``): the cascades, the row
    lock and the ordering differ between them (short leases and windows: conftest)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        settings = replace(settings,
                           database_url=request.getfixturevalue("migrated_postgres_url"))
    return settings


@pytest.fixture
def operator(services: Services) -> str:
    return services.signer.issue(["admin"])


def _call(api: str, method: str, path: str, token: str | None = None,
          **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, api + path, headers=headers, timeout=30, **kwargs)


def _create(api: str, token: str, **fields: Any) -> httpx.Response:
    return _call(api, "POST", "/v1/channels", token, json={"name": "News", "sources": [UDP],
                                                          **fields})


def _error(response: httpx.Response, status: int, code: str, says: str = "") -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert says in error["message"], error["message"]
    return str(error["message"])


def _new_package(services: Services, name: str) -> None:
    with services.db.session() as session:
        packages.create_package(session, name)


# --- the round trip ------------------------------------------------------------------

@BOTH_ENGINES
def test_create_read_list_change_and_delete(api: str, services: Services,
                                            operator: str) -> None:
    _new_package(services, "news")
    _new_package(services, "sport")
    created = _create(api, operator, name="News <b>24</b> \u00e9", number=101,
                      sources=[UDP, "srt://10.0.0.5:9000?mode=caller&latency=200000"],
                      ladder=[720, 360], segment_seconds=4, dvr_window_seconds=7200,
                      key_rotation_seconds=0, failover_after_seconds=3.5,
                      packages=["sport", "news"])
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    channel = created.json()
    channel_id = channel["id"]
    assert created.headers["location"] == f"/v1/channels/{channel_id}"
    assert channel | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None, "name": "News <b>24</b> \u00e9", "number": 101,
        "sources": [UDP, "srt://10.0.0.5:9000?mode=caller&latency=200000"],
        "ladder": [720, 360], "segment_seconds": 4.0, "dvr_window_seconds": 7200,
        "key_rotation_seconds": 0, "failover_after_seconds": 3.5, "revision": 1,
        "status": "starting", "active_source": None, "input_bitrate": None,
        "last_segment_at": None, "error": None, "created_at": None, "updated_at": None,
        "packages": ["news", "sport"],
        "playback": {"hls": f"/hls/{channel_id}/live/master.m3u8"}}
    assert channel["playback"]["hls"] == urls.live_master(channel_id)

    # Defaults, and the order of a listing: by number, those without one last.
    plain = _create(api, operator, name="Plain").json()
    assert (plain["ladder"], plain["segment_seconds"], plain["dvr_window_seconds"],
            plain["key_rotation_seconds"], plain["failover_after_seconds"], plain["number"],
            plain["packages"]) == ("auto", 2.0, 14400, 600, 6.0, None, [])
    first = _create(api, operator, name="First", number=1).json()
    assert _call(api, "GET", f"/v1/channels/{channel_id}", operator).json() == channel
    listing = _call(api, "GET", "/v1/channels?limit=2", operator)
    assert listing.status_code == 200 and listing.headers["cache-control"] == "no-store"
    page = listing.json()
    assert [c["id"] for c in page["items"]] == [first["id"], channel_id]
    assert page["next"] == f"/v1/channels?limit=2&after={channel_id}"
    rest = _call(api, "GET", page["next"], operator).json()
    assert [c["id"] for c in rest["items"]] == [plain["id"]] and rest["next"] is None
    assert rest["items"][0] == plain

    # A rename leaves the runner alone; a new ladder restarts it.
    renamed = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                    json={"name": "News 24", "number": None, "packages": ["news"]})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["number"], renamed.json()["revision"],
            renamed.json()["packages"]) == ("News 24", None, 1, ["news"])
    same = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                 json={"ladder": [720, 360], "segment_seconds": 4.0})
    assert same.json()["revision"] == 1  # nothing the runner reads changed
    changed = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                    json={"ladder": "passthrough", "dvr_window_seconds": 0})
    assert changed.json()["revision"] == 2 and changed.json()["ladder"] == "passthrough"
    assert _call(api, "GET", f"/v1/channels/{channel_id}", operator).json() == changed.json()

    deleted = _call(api, "DELETE", f"/v1/channels/{channel_id}", operator)
    assert deleted.status_code == 204 and deleted.headers["cache-control"] == "no-store"
    _error(_call(api, "GET", f"/v1/channels/{channel_id}", operator), 404, "not_found")
    _error(_call(api, "DELETE", f"/v1/channels/{channel_id}", operator), 404, "not_found")
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(PackageChannel).where(
            PackageChannel.channel_id == channel_id)) == 0


def test_text_is_stored_as_given_and_logged_as_data(api: str, services: Services,
                                                     operator: str) -> None:
    name = 'Evil" \u202e<script>alert(1)</script> %s {0}'
    with captured(logging.INFO) as logged:
        created = _create(api, operator, name=name,
                          sources=["srt://10.0.0.5:9000?passphrase=hunter2hunter2"])
        logged.wait_for(msg="channel created", channel_id=created.json()["id"])
    assert created.status_code == 201
    assert created.json()["name"] == name
    with services.db.session() as session:
        found = session.get(Channel, created.json()["id"])
        assert found is not None and found.name == name
    assert not any("hunter2" in line or "<script>" in line for line in logged.raw)


# --- refusals --------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "says"), [
    ({"sources": [UDP]}, 'missing required field "name"'),
    ({"name": "x"}, 'missing required field "sources"'),
    ({"name": "x", "sources": [UDP], "colour": "red"}, 'unknown field "colour"'),
    ({"name": 5, "sources": [UDP]}, "name: expected a string"),
    ({"name": None, "sources": [UDP]}, "name: may not be null"),
    ({"name": "", "sources": [UDP]}, "name: 1 to 200"),
    ({"name": "   ", "sources": [UDP]}, "name: 1 to 200"),
    ({"name": "x" * 201, "sources": [UDP]}, "name: 1 to 200"),
    ({"name": "a\nb", "sources": [UDP]}, "control characters"),
    ({"name": "a\x00b", "sources": [UDP]}, "control characters"),
    ({"name": "x", "sources": UDP}, "sources: a list of 1 to 8"),
    ({"name": "x", "sources": []}, "sources: a list of 1 to 8"),
    ({"name": "x", "sources": [f"udp://127.0.0.1:{5000 + n}" for n in range(9)]},
     "sources: a list of 1 to 8"),
    ({"name": "x", "sources": [UDP, UDP]}, "listed twice"),
    ({"name": "x", "sources": [5]}, "sources[0]: a source must be a URL string"),
    ({"name": "x", "sources": ["file:///etc/passwd"]}, 'sources[0]: source scheme "file"'),
    ({"name": "x", "sources": [UDP, "concat:a|b"]}, "sources[1]: source scheme"),
    ({"name": "x", "sources": ["http://h/x.ts"]}, ".m3u8"),
    ({"name": "x", "sources": ["http://h/../x.m3u8"]}, ".."),
    ({"name": "x", "sources": ["udp://u:p@127.0.0.1:5000"]}, "no user or password"),
    ({"name": "x", "sources": [UDP], "number": "7"}, "number: expected an integer"),
    ({"name": "x", "sources": [UDP], "number": True}, "number: expected an integer"),
    ({"name": "x", "sources": [UDP], "number": 1.5}, "number: expected an integer"),
    ({"name": "x", "sources": [UDP], "number": 0}, "number: 1 to 99999"),
    ({"name": "x", "sources": [UDP], "number": 100000}, "number: 1 to 99999"),
    ({"name": "x", "sources": [UDP], "ladder": "best"}, "ladder:"),
    ({"name": "x", "sources": [UDP], "ladder": []}, "ladder:"),
    ({"name": "x", "sources": [UDP], "ladder": [1080, 2160]}, "ladder:"),
    ({"name": "x", "sources": [UDP], "ladder": [108]}, "from: 1080, 720"),
    ({"name": "x", "sources": [UDP], "ladder": [360, 720]}, "tallest first"),
    ({"name": "x", "sources": [UDP], "ladder": [720, 720]}, "tallest first"),
    ({"name": "x", "sources": [UDP], "ladder": ["720"]}, "ladder:"),
    ({"name": "x", "sources": [UDP], "segment_seconds": 0.5}, "segment_seconds: 1 to 10"),
    ({"name": "x", "sources": [UDP], "segment_seconds": 11}, "segment_seconds: 1 to 10"),
    ({"name": "x", "sources": [UDP], "segment_seconds": "2"}, "expected a number"),
    ({"name": "x", "sources": [UDP], "dvr_window_seconds": -1}, "dvr_window_seconds: 0 to"),
    ({"name": "x", "sources": [UDP], "dvr_window_seconds": 7 * 86400 + 1},
     "dvr_window_seconds: 0 to 604800"),
    ({"name": "x", "sources": [UDP], "dvr_window_seconds": 3600.5}, "expected an integer"),
    ({"name": "x", "sources": [UDP], "key_rotation_seconds": 30},
     "key_rotation_seconds: 0 (one key) or 60 to 86400"),
    ({"name": "x", "sources": [UDP], "key_rotation_seconds": 86401}, "60 to 86400"),
    ({"name": "x", "sources": [UDP], "failover_after_seconds": 1}, "2 to 60"),
    ({"name": "x", "sources": [UDP], "failover_after_seconds": 61}, "2 to 60"),
    ({"name": "x", "sources": [UDP], "failover_after_seconds": None}, "may not be null"),
    ({"name": "x", "sources": [UDP], "packages": "news"}, "packages: a list"),
    ({"name": "x", "sources": [UDP], "packages": [1]}, "packages: a list"),
    ({"name": "x", "sources": [UDP], "packages": ["nope", "news"]},
     'no such package: "nope"'),
])
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
        api: str, services: Services, operator: str, body: dict[str, Any], says: str) -> None:
    _new_package(services, "news")
    message = _error(_call(api, "POST", "/v1/channels", operator, json=body), 400,
                     "bad_request", says)
    for source in body.get("sources") or []:
        if isinstance(source, str) and len(source) > 12:
            assert source not in message  # a URL may hold a secret: never repeated
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Channel)) == 0


def test_bodies_that_are_not_json_objects_are_refused(api: str, operator: str) -> None:
    _error(_call(api, "POST", "/v1/channels", operator, content=b"{", headers={
        "Content-Type": "application/json"}), 400, "bad_request", "not valid JSON")
    _error(_call(api, "POST", "/v1/channels", operator, json=[1]), 400, "bad_request",
           "JSON object")
    _error(_call(api, "POST", "/v1/channels", operator, content=b"name=x"), 415,
           "unsupported_media_type")
    _error(_call(api, "POST", "/v1/channels", operator, content=b" " * 70_000,
                 headers={"Content-Type": "application/json"}), 413, "payload_too_large")


def test_numbers_json_cannot_hold_are_refused(api: str, operator: str) -> None:
    for raw in (b'1e400', b'NaN', b'Infinity', b'-1e400'):
        body = b'{"name": "x", "sources": ["%s"], "segment_seconds": %s}' % (UDP.encode(), raw)
        _error(_call(api, "POST", "/v1/channels", operator, content=body,
                     headers={"Content-Type": "application/json"}), 400, "bad_request")


@BOTH_ENGINES
def test_a_taken_number_is_409_on_create_and_on_change(api: str, operator: str) -> None:
    one = _create(api, operator, number=7).json()
    _error(_create(api, operator, number=7), 409, "already_exists", "number 7 is taken")
    other = _create(api, operator, number=8).json()
    _error(_call(api, "PATCH", f"/v1/channels/{other['id']}", operator, json={"number": 7}),
           409, "already_exists", one["id"])
    # Its own number again is no conflict.
    again = _call(api, "PATCH", f"/v1/channels/{one['id']}", operator, json={"number": 7})
    assert again.status_code == 200


@BOTH_ENGINES
def test_a_listener_s_port_is_its_channel_s_alone(api: str, operator: str) -> None:
    rtmp = "rtmp://0.0.0.0:1935/live/{key}?mode=listener"
    one = _create(api, operator, sources=[rtmp.format(key="first-key")]).json()
    # Another address, another key, the same TCP port: refused, naming the holder.
    message = _error(_create(api, operator, sources=[
        UDP, "rtmp://127.0.0.1:1935/other/second-key?mode=listener"]),
        409, "already_exists", one["id"])
    assert "tcp port 1935" in message and "second-key" not in message
    # UDP port 1935 is another port: an SRT listener may have it.
    srt = _create(api, operator, sources=["srt://0.0.0.0:1935?mode=listener"])
    assert srt.status_code == 201, srt.text
    other = _create(api, operator).json()
    path = f"/v1/channels/{other['id']}"
    _error(_call(api, "PATCH", path, operator, json={"sources": [rtmp.format(key="k")]}),
           409, "already_exists", one["id"])
    _error(_call(api, "PATCH", path, operator,
                 json={"sources": ["srt://[::]:1935?mode=listener&latency=200"]}),
           409, "already_exists", srt.json()["id"])
    # One channel, two listeners on one port: refused as a bad body.
    _error(_call(api, "PATCH", path, operator, json={"sources": [
        rtmp.format(key="a"), "rtmp://127.0.0.1:1935/live/b?mode=listener"]}),
        400, "bad_request", "two listeners on one port")
    # The holder may keep its port (a new key) and let it go; then it is free.
    again = _call(api, "PATCH", f"/v1/channels/{one['id']}", operator,
                  json={"sources": [rtmp.format(key="new-key")]})
    assert again.status_code == 200, again.text
    freed = _call(api, "PATCH", f"/v1/channels/{one['id']}", operator, json={"sources": [UDP]})
    assert freed.status_code == 200, freed.text
    taken = _call(api, "PATCH", path, operator, json={"sources": [rtmp.format(key="k")]})
    assert taken.status_code == 200, taken.text
    # A deleted channel's port goes with it.
    assert _call(api, "DELETE", path, operator).status_code == 204
    assert _create(api, operator, sources=[rtmp.format(key="k")]).status_code == 201


def test_a_change_is_checked_like_a_creation(api: str, operator: str) -> None:
    channel_id = _create(api, operator).json()["id"]
    path = f"/v1/channels/{channel_id}"
    for body, says in (({"sources": []}, "sources: a list"),
                       ({"sources": ["pipe:0"]}, "source scheme"),
                       ({"ladder": [240]}, "ladder:"), ({"name": None}, "may not be null"),
                       ({"packages": ["nope"]}, "no such package"),
                       ({"segment_seconds": 20}, "1 to 10"), ({"id": "x"}, "unknown field")):
        _error(_call(api, "PATCH", path, operator, json=body), 400, "bad_request", says)
    assert _call(api, "GET", path, operator).json()["revision"] == 1


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_and_malformed_ids_are_404(api: str, operator: str, method: str) -> None:
    for channel_id in ("0" * 32, "nope", "A" * 32, "0" * 33, "..%2f..%2fetc"):
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        _error(_call(api, method, f"/v1/channels/{channel_id}", operator, **kwargs), 404,
               "not_found")


def test_a_cursor_naming_no_channel_is_400(api: str, operator: str) -> None:
    _error(_call(api, "GET", "/v1/channels?after=" + "0" * 32, operator), 400, "bad_request")
    _error(_call(api, "GET", "/v1/channels?limit=0", operator), 400, "bad_request")


def test_only_admins_may_call_it(api: str, services: Services, operator: str) -> None:
    channel_id = _create(api, operator).json()["id"]
    expired = services.signer.issue(["admin"], ttl_s=-300)
    box = household(services).token  # playback only
    subscriber = household(services, scopes=("admin", "account")).token  # a user, no admin
    calls = [("POST", "/v1/channels", {"json": {"name": "x", "sources": [UDP]}}),
             ("GET", "/v1/channels", {}), ("GET", f"/v1/channels/{channel_id}", {}),
             ("PATCH", f"/v1/channels/{channel_id}", {"json": {"name": "y"}}),
             ("DELETE", f"/v1/channels/{channel_id}", {})]
    for method, path, kwargs in calls:
        for token in (None, "garbage", expired):
            response = _call(api, method, path, token, **kwargs)
            _error(response, 401, "unauthorized" if token is None else "invalid_token")
            assert "Bearer" in response.headers["www-authenticate"]
        _error(_call(api, method, path, box, **kwargs), 403, "insufficient_scope")
        _error(_call(api, method, path, subscriber, **kwargs), 403, "forbidden")
    # None of it changed anything.
    row = _call(api, "GET", f"/v1/channels/{channel_id}", operator).json()
    assert row["name"] == "News" and row["revision"] == 1
    assert len(_call(api, "GET", "/v1/channels", operator).json()["items"]) == 1


def test_ladder_heights_in_the_document_are_the_encoder_s() -> None:
    assert tuple(LADDER_HEIGHTS) == encoder.HEIGHTS


# --- keys follow the packages ----------------------------------------------------------

def test_an_entitled_box_gets_the_channel_s_key_until_its_package_lets_the_channel_go(
        api: str, services: Services, operator: str) -> None:
    _new_package(services, "basic")
    _new_package(services, "premium")
    viewer, other = household(services), household(services)
    with services.db.session() as session:
        entitlements.grant(session, viewer.account_id, "basic")
        entitlements.grant(session, other.account_id, "premium")
    channel_id = _create(api, operator, packages=["basic"]).json()["id"]
    key = generate_key()  # as the channel's runner stores its keys
    with services.db.session() as session:
        keystore.store(session, channel_id, [key], services.envelope)
    path = f"/keys/{channel_id}/{key.key_id}"

    got = _call(api, "GET", path, viewer.token)
    assert got.status_code == 200 and got.content == key.key
    refused = _call(api, "GET", path, other.token)
    assert refused.status_code == 403 and key.key not in refused.content

    moved = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                  json={"packages": ["premium"]})
    assert moved.status_code == 200 and moved.json()["revision"] == 1
    # At once: the key path's copy of the channel's packages is stale (db.stamps).
    refused = _call(api, "GET", path, viewer.token)
    assert refused.status_code == 403 and key.key not in refused.content
    assert _call(api, "GET", path, other.token).content == key.key

    _call(api, "DELETE", f"/v1/channels/{channel_id}", operator)
    gone = _call(api, "GET", path, other.token)
    assert gone.status_code in (403, 404) and key.key not in gone.content
    with services.db.session() as session:
        assert keystore.key_ids(session, channel_id) == []


# --- with a real runner ----------------------------------------------------------------

def _wait_for_segments(services: Services, channel_id: str, count: int,
                       settings: Settings) -> list[LiveSegment]:
    return live.wait_for(f"{count} segments", lambda: (
        found if len(found := live.segments(services, channel_id)) >= count else None),
        timeout=40, explain=lambda: logs(settings))


def test_a_change_restarts_the_running_encoder_on_the_new_source(
        api: str, services: Services, settings: Settings, operator: str,
        runners: list[subprocess.Popen[bytes]]) -> None:
    require_tools("ffmpeg", "ffprobe")
    first, second = live.free_udp_port(), live.free_udp_port()
    with live.encoder(first) as old, live.encoder(second, tone=880):
        channel_id = _create(api, operator, sources=[live.udp_source(first)],
                             ladder="passthrough", segment_seconds=1,
                             failover_after_seconds=2).json()["id"]
        start_runner(runners, settings, "runner-a")
        before = _wait_for_segments(services, channel_id, 2, settings)[-1]
        renamed = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                        json={"name": "Renamed"}).json()
        assert renamed["revision"] == 1
        changed = _call(api, "PATCH", f"/v1/channels/{channel_id}", operator,
                        json={"sources": [live.udp_source(second)]}).json()
        assert changed["revision"] == 2
        old.kill()  # only the new source is left: anything else would be the slate
        after = live.wait_for("three segments of the new source", lambda: (
            found if len(found := [s for s in live.segments(services, channel_id)
                                   if s.discontinuity > before.discontinuity]) >= 3 else None),
            timeout=40, explain=lambda: logs(settings))
        row = _call(api, "GET", f"/v1/channels/{channel_id}", operator).json()

    assert (row["status"], row["active_source"], row["error"]) == ("live", 0, None)
    assert row["sources"] == [live.udp_source(second)]
    assert row["input_bitrate"] and row["last_segment_at"]
    # One discontinuity: the restart (the slate never came on, which would be another).
    assert {s.discontinuity for s in after} == {before.discontinuity + 1}
    assert listed(api, channel_id, encoder.PASSTHROUGH_RENDITION, 3) is not None
    switches = services.redis.hgetall("stb:metrics:stb_live_switches_total")
    assert any(b"restart" in k for k in switches), switches
    assert not any(b"slate" in k for k in switches), switches


def test_deleting_a_live_channel_leaves_no_object_and_no_row(
        api: str, services: Services, settings: Settings, operator: str,
        runners: list[subprocess.Popen[bytes]]) -> None:
    require_tools("ffmpeg", "ffprobe")
    _new_package(services, "news")
    port = live.free_udp_port()
    with live.encoder(port):
        channel_id = _create(api, operator, sources=[live.udp_source(port)],
                             ladder="passthrough", segment_seconds=1, key_rotation_seconds=60,
                             packages=["news"]).json()["id"]
        mapped = _call(api, "PUT", "/v1/guide/mappings/news.example", operator,
                       json={"channel": channel_id})
        assert mapped.status_code == 201
        start_runner(runners, settings, "runner-a")
        _wait_for_segments(services, channel_id, 3, settings)
        prefix = asset_prefix(channel_id)
        assert list(services.storage.list_keys(prefix))
        # Delete in the middle of a segment: the runner is writing the next one now.
        time.sleep(0.5)
        deleted = _call(api, "DELETE", f"/v1/channels/{channel_id}", operator)
        assert deleted.status_code == 204
        # The runner lets it go at its next look (its lease released once the run ends).
        live.wait_for("the runner lets the channel go",
                      lambda: holder(services, channel_id) is None, timeout=20,
                      explain=lambda: logs(settings))
        time.sleep(1.5)  # anything still on its way would land now

    assert list(services.storage.list_keys(prefix)) == []
    # The run itself removed what it may have stored after the API's pass.
    assert "channel deleted; its objects removed" in logs(settings)
    with services.db.session() as session:
        for table, column in ((LiveSegment, LiveSegment.channel_id),
                              (PackageChannel, PackageChannel.channel_id),
                              (ChannelMapping, ChannelMapping.channel_id),
                              (Channel, Channel.id)):
            assert session.scalar(select(func.count()).select_from(table)
                                  .where(column == channel_id)) == 0, table
        assert keystore.key_ids(session, channel_id) == []
    assert httpx.get(f"{api}{urls.live_master(channel_id)}", timeout=10).status_code == 404
