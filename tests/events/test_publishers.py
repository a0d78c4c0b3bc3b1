"""What publishes: the pipeline (an asset turning ready reaches the content team), live
channels (status changes, once each), entitlement grants and device revocation through
the REST API, and an admin's command to one device."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from stb_origin import pipeline
from stb_origin.ingest.service import accept_source
from stb_origin.live.publisher import Publisher
from stb_origin.services import Services, build_services
from tests.drm.support import Box, household, new_asset
from tests.events.clients import closed_with, next_event, socket, subscribed
from tests.live.test_publisher import T0, claimed, segment_files
from tests.support import live
from tests.support.media import make_clip


def test_an_asset_going_ready_through_the_pipeline_reaches_the_content_team(
        live_api: str, services: Services, editor: str, tmp_path: Path) -> None:
    source = make_clip(tmp_path / "film.mp4", seconds=2, size="320x180")
    asset_id = str(accept_source(services, source, ".mp4", "film", source.stat().st_size)["id"])
    # A quick ladder: what is under test is the events, not the encode.
    quick = build_services(services.settings.with_(hevc=False, per_title=False,
                                                   loudness_normalisation=False))
    try:
        with socket(live_api, editor, query=f"topics=assets:{asset_id}") as ws:
            subscribed(ws)
            assert pipeline.process(quick, asset_id) == "ready"
            heard = []
            while not heard or heard[-1]["status"] != "ready":
                event = next_event(ws)
                assert (event["topic"], event["key"]) == ("assets", asset_id)
                heard.append(event["data"])
    finally:
        quick.close()
    assert heard[0] == {"asset": asset_id, "status": "processing", "progress": 0, "error": None}
    assert heard[-1] == {"asset": asset_id, "status": "ready", "progress": 100, "error": None}
    progress = [e["progress"] for e in heard]
    assert progress == sorted(progress)


def test_an_asset_deleted_over_the_api_is_heard_as_deleted(live_api: str, services: Services,
                                                          editor: str) -> None:
    asset_id, _key = new_asset(services)
    writer = services.signer.issue(["assets:write"])
    with socket(live_api, editor, query=f"topics=assets:{asset_id}") as ws:
        subscribed(ws)
        deleted = httpx.delete(f"{live_api}/v1/assets/{asset_id}",
                               headers={"Authorization": f"Bearer {writer}"}, timeout=10)
        assert deleted.status_code == 204
        event = next_event(ws)
    assert (event["topic"], event["key"]) == ("assets", asset_id)
    assert event["data"] == {"asset": asset_id, "status": "deleted", "progress": 0,
                             "error": None}


def test_a_channel_status_change_is_heard_once(live_api: str, services: Services, box: Box,
                                               tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    publisher = Publisher(services, channel_id, claimed(services, channel_id),
                          key_rotation_s=600)
    with socket(live_api, box.token, query="topics=channels") as ws:
        subscribed(ws)
        publisher.publish(0, 0, T0, 2.0, segment_files(tmp_path, 0), {})
        publisher.publish(1, 0, T0, 2.0, segment_files(tmp_path, 1), {})  # still live
        publisher.report(status="no_signal", error_message="no input <b>")
        first, second = next_event(ws), next_event(ws)
    assert first["data"] == {"channel": channel_id, "status": "live", "message": None}
    assert second["data"] == {"channel": channel_id, "status": "no_signal",
                              "message": "no input <b>"}


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return {"Authorization": "Bearer " + services.signer.issue(["admin"])}


def test_an_entitlement_granted_and_revoked_over_the_api_reaches_the_account_s_box(
        live_api: str, services: Services, box: Box, admin: dict[str, str]) -> None:
    created = httpx.post(live_api + "/v1/packages", headers=admin,
                         json={"name": "sports"}, timeout=10)
    assert created.status_code == 201, created.text
    with socket(live_api, box.token, query="topics=entitlements") as ws:
        subscribed(ws)
        granted = httpx.post(live_api + "/v1/entitlements", headers=admin,
                             json={"account": box.account_id, "package": "sports"}, timeout=10)
        assert granted.status_code == 201, granted.text
        assert next_event(ws)["data"] == {"action": "granted", "entitlement": granted.json()}
        revoked = httpx.post(live_api + f"/v1/entitlements/{granted.json()['id']}/revoke",
                             headers=admin, timeout=10)
        assert revoked.status_code == 200, revoked.text
        assert next_event(ws)["data"] == {"action": "revoked", "entitlement": revoked.json()}


def test_a_device_revoked_over_the_api_is_signed_out(live_api: str, box: Box,
                                                     admin: dict[str, str]) -> None:
    with socket(live_api, box.token) as ws:
        subscribed(ws)
        revoked = httpx.post(live_api + f"/v1/devices/{box.device_id}/revoke", headers=admin,
                             timeout=10)
        assert revoked.status_code == 200, revoked.text
        assert next_event(ws)["data"] == {"command": "sign_out"}
        assert closed_with(ws)[0] == 4401


def test_an_admin_sends_a_command_to_one_device(live_api: str, services: Services, box: Box,
                                                admin: dict[str, str]) -> None:
    other = household(services)
    url = live_api + f"/v1/devices/{box.device_id}/commands"
    with socket(live_api, box.token) as ws, socket(live_api, other.token) as other_ws:
        subscribed(ws)
        subscribed(other_ws)
        sent = httpx.post(url, headers=admin, json={"command": "resync"}, timeout=10)
        assert sent.status_code == 202, sent.text
        assert sent.json() == {"device": box.device_id, "command": "resync",
                               "offset": sent.json()["offset"]}
        event = next_event(ws)
        assert (event["id"], event["data"]) == (sent.json()["offset"], {"command": "resync"})
        # The other box heard nothing of it: its next event is a later one.
        marker = httpx.post(live_api + f"/v1/devices/{other.device_id}/commands",
                            headers=admin, json={"command": "resync"}, timeout=10)
        assert next_event(other_ws)["id"] == marker.json()["offset"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"command": "format_disk"}, 400, "bad_request"),
    ({"command": 5}, 400, "bad_request"),
    ({}, 400, "bad_request"),
    ({"command": "resync", "extra": 1}, 400, "bad_request"),
    ("resync", 400, "bad_request"),
])
def test_bad_commands_are_refused(live_api: str, box: Box, admin: dict[str, str],
                                  body: object, status: int, code: str) -> None:
    sent = httpx.post(live_api + f"/v1/devices/{box.device_id}/commands", headers=admin,
                      json=body, timeout=10)
    assert (sent.status_code, sent.json()["error"]["code"]) == (status, code)


def test_commands_need_an_admin_and_a_real_device(live_api: str, services: Services, box: Box,
                                                  admin: dict[str, str]) -> None:
    url = live_api + f"/v1/devices/{box.device_id}/commands"
    body = {"command": "sign_out"}
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    assert httpx.post(url, headers=box.auth(), json=body, timeout=10).status_code == 403
    owner = {"Authorization": "Bearer " + services.signer.issue(["admin"],
                                                                  subject=box.user_id)}
    # An admin-scoped token of a subscriber is no admin.
    assert httpx.post(url, headers=owner, json=body, timeout=10).status_code == 403
    for device in ("0" * 32, "../../x", "%2e%2e"):
        missing = httpx.post(live_api + f"/v1/devices/{device}/commands", headers=admin,
                             json=body, timeout=10)
        assert missing.status_code == 404, device
    assert httpx.post(url, headers={**admin, "Content-Type": "text/plain"},
                      content=json.dumps(body), timeout=10).status_code == 415


def test_catalog_and_guide_changes_reach_a_listening_box(
        live_api: str, services: Services, box: Box, admin: dict[str, str]) -> None:
    editor = {"Authorization": "Bearer " + services.signer.issue(["assets:write"])}
    guide = (b'<tv><programme start="20261207180000 +0000" stop="20261207183000 +0000"'
             b' channel="news.tv"><title>News</title></programme></tv>')
    with socket(live_api, box.token, query="topics=catalog,guide") as ws:
        subscribed(ws)
        made = httpx.post(live_api + "/v1/catalog/titles", headers=editor,
                          json={"kind": "movie", "name": "<b>New</b>"})
        assert made.status_code == 201, made.text
        title_id = made.json()["id"]
        created = next_event(ws)
        assert httpx.delete(f"{live_api}/v1/catalog/titles/{title_id}",
                            headers=editor).status_code == 204
        deleted = next_event(ws)
        imported = httpx.post(live_api + "/v1/guide/imports", content=guide, headers={
            **admin, "Content-Type": "application/xml"})
        assert imported.status_code == 200, imported.text
        guide_event = next_event(ws)
    assert (created["topic"], created["key"], created["data"]) == (
        "catalog", title_id, {"title": title_id, "change": "created"})
    assert deleted["data"] == {"title": title_id, "change": "deleted"}
    # The title's name is not in the event: a box rereads what changed.
    assert "<b>" not in json.dumps(created)
    assert guide_event["topic"] == "guide"
    assert guide_event["data"] == {"imported": 0, "replaced": 0, "channels": 0}
