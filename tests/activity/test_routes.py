"""POST /v1/activity and the rows it feeds, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stb_origin.accounts import devices
from stb_origin.accounts.models import Entitlement
from stb_origin.assets.records import Asset, Status
from stb_origin.db.types import new_id, utcnow
from stb_origin.services import Services
from tests.activity.conftest import (
    BOTH_ENGINES,
    DURATION_S,
    entitled_household,
    new_channel,
    ready_asset,
)
from tests.drm.support import ANY_BOX, Box, household

pytestmark = BOTH_ENGINES


def report(api: str, token: str, **body: Any) -> httpx.Response:
    fields: dict[str, Any] = {"kind": "progress", "profile": "main",
                              "at": utcnow().isoformat()}
    fields.update(body)
    return httpx.post(f"{api}/v1/activity", json=fields,
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)


def row(api: str, token: str, which: str = "continue", profile: str = "main",
        **params: str) -> httpx.Response:
    return httpx.get(f"{api}/v1/activity/{which}", params={"profile": profile, **params},
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


def items(api: str, token: str, which: str = "continue", profile: str = "main") -> list[str]:
    answer = row(api, token, which, profile)
    assert answer.status_code == 200, answer.text
    return [item["asset" if which == "continue" else "channel"]
            for item in answer.json()["items"]]


def another_box(services: Services, of: Box) -> Box:
    with services.db.session() as session:
        device = devices.register_device(session, of.account_id, "SN-2", "Box", ANY_BOX,
                                         max_devices=5)
    token = services.signer.issue(["playback"], subject=of.user_id, device_id=device.id)
    return Box(of.user_id, of.account_id, device.id, token)


def test_progress_then_the_continue_row(api, box, film):
    kept = report(api, box.token, asset=film, position=30.5)
    assert kept.status_code == 200, kept.text
    assert kept.json()["position"] == 30.5 and kept.json()["finished"] is False
    answer = row(api, box.token)
    assert answer.headers["cache-control"] == "no-store"
    [item] = answer.json()["items"]
    assert item["asset"] == film and item["position"] == 30.5
    assert item["duration"] == DURATION_S and item["title"] == "film"


def test_the_resume_point_of_one_asset(api, services, box, film):
    def resume(asset_id: str, profile: str = "main", token: str = box.token) -> httpx.Response:
        return httpx.get(f"{api}/v1/activity/assets/{asset_id}", params={"profile": profile},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)

    assert report(api, box.token, asset=film, position=96).status_code == 200
    point = resume(film)
    assert point.status_code == 200 and point.headers["cache-control"] == "no-store"
    # Finished, so off the row, but still where the box would resume.
    assert point.json()["position"] == 96 and point.json()["finished"] is True
    assert resume(film, "kids").status_code == 404
    assert resume(new_id()).json()["error"]["code"] == "not_found"
    assert resume("..%2F..%2Fetc").status_code == 404
    assert resume(film, "../x").status_code == 400
    neighbour = entitled_household(services)
    assert resume(film, token=neighbour.token).status_code == 404


def test_the_row_is_most_recent_first_and_finished_ones_leave_it(api, services, box, film):
    second, third = ready_asset(services, "second"), ready_asset(services, "third")
    now = utcnow()
    assert report(api, box.token, asset=film, position=10,
                  at=(now - timedelta(minutes=2)).isoformat()).status_code == 200
    assert report(api, box.token, asset=second, position=20,
                  at=(now - timedelta(minutes=1)).isoformat()).status_code == 200
    finished = report(api, box.token, asset=third, position=DURATION_S * 0.96,
                      at=now.isoformat())
    assert finished.json()["finished"] is True
    assert items(api, box.token) == [second, film]


def test_a_later_time_wins_over_a_report_arriving_late(api, services, box, film):
    other = another_box(services, box)
    now = utcnow()
    assert report(api, box.token, asset=film, position=60, at=now.isoformat()).json()[
        "position"] == 60
    late = report(api, other.token, asset=film, position=20,
                  at=(now - timedelta(seconds=30)).isoformat())
    assert late.status_code == 200
    assert late.json()["position"] == 60 and late.json()["at"] == now.isoformat()
    assert row(api, box.token).json()["items"][0]["position"] == 60


def test_reports_past_the_rate_are_refused_with_retry_after(api, services, box, film):
    assert report(api, box.token, asset=film, position=1).status_code == 200
    again = report(api, box.token, asset=film, position=2)
    assert again.status_code == 429 and again.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(again.headers["retry-after"]) <= services.settings.activity_report_interval_s
    # A stop still gets through (it frees the box's stream), and so does another item.
    assert report(api, box.token, asset=film, position=3, kind="stop").status_code == 200
    assert report(api, box.token, asset=ready_asset(services), position=1).status_code == 200


def test_unentitled_content_is_refused(api, services, box, family):
    elsewhere = ready_asset(services, package=None)
    channel = new_channel(services, package=None)
    for body in ({"asset": elsewhere, "position": 1}, {"channel": channel}):
        refused = report(api, box.token, **body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_entitled"
    assert items(api, box.token) == [] and items(api, box.token, "channels") == []


def test_the_row_shows_only_what_is_still_ready_and_entitled(api, services, box, film):
    gone = ready_asset(services)
    assert report(api, box.token, asset=film, position=1).status_code == 200
    assert report(api, box.token, asset=gone, position=1).status_code == 200
    with services.db.session() as session:
        asset = session.get(Asset, gone)
        assert asset is not None
        asset.status = Status.FAILED.value
    assert items(api, box.token) == [film]
    with services.db.session() as session:
        for grant in session.query(Entitlement).filter_by(account_id=box.account_id):
            grant.valid_until = utcnow()
    assert items(api, box.token) == []


def test_another_account_neither_reads_nor_writes_this_ones(api, services, box, film):
    neighbour = entitled_household(services)
    assert report(api, box.token, asset=film, position=42).status_code == 200
    assert items(api, neighbour.token) == []
    assert report(api, neighbour.token, asset=film, position=7).json()["position"] == 7
    assert row(api, box.token).json()["items"][0]["position"] == 42
    stranger = household(services)  # not entitled to anything
    assert report(api, stranger.token, asset=film, position=1).status_code == 403
    assert items(api, stranger.token) == []


def test_profiles_are_kept_apart(api, box, film):
    assert report(api, box.token, asset=film, position=5, profile="kids").status_code == 200
    assert items(api, box.token, profile="kids") == [film]
    assert items(api, box.token, profile="main") == []


def test_recently_watched_channels(api, services, box, family):
    news, sport = new_channel(services), new_channel(services)
    now = utcnow()
    assert report(api, box.token, channel=sport,
                  at=(now - timedelta(minutes=5)).isoformat()).status_code == 200
    kept = report(api, box.token, channel=news, at=now.isoformat())
    assert kept.status_code == 200 and kept.json() == {
        "channel": news, "profile": "main", "at": now.isoformat()}
    answer = row(api, box.token, "channels").json()["items"]
    assert [item["channel"] for item in answer] == [news, sport]
    assert answer[0]["name"].startswith("Channel <")  # as it is: JSON escapes it


def test_pages_follow_next_and_an_unknown_cursor_is_refused(api, services, box, film):
    second = ready_asset(services)
    now = utcnow()
    report(api, box.token, asset=film, position=1, at=(now - timedelta(seconds=9)).isoformat())
    report(api, box.token, asset=second, position=1, at=now.isoformat())
    first_page = row(api, box.token, limit="1").json()
    assert [item["asset"] for item in first_page["items"]] == [second]
    following = httpx.get(api + first_page["next"], timeout=10,
                          headers={"Authorization": f"Bearer {box.token}"}).json()
    assert [item["asset"] for item in following["items"]] == [film]
    assert following["next"] is None
    unknown = row(api, box.token, after=new_id())
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "bad_request"


def _at(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat()


BAD_BODIES = [
    ({"position": "12"}, "position"),
    ({"position": True}, "position"),
    ({"position": -1}, "position"),
    ({"position": 10**400}, "position"),
    ({"position": 1e308}, "position"),
    ({"position": None}, "position"),
    ({"kind": "pause"}, "kind"),
    ({"kind": 3}, "kind"),
    ({"profile": ""}, "profile"),
    ({"profile": "../../etc"}, "profile"),
    ({"profile": "a" * 33}, "profile"),
    ({"profile": "m\u00e4in"}, "profile"),
    ({"at": "2026-12-07T10:00:00"}, "at"),
    ({"at": "yesterday"}, "at"),
    ({"at": 1765100000}, "at"),
    ({"at": _at(timedelta(hours=1))}, "clock"),
    ({"at": _at(-timedelta(days=2))}, "clock"),
    ({"asset": "../x"}, "asset"),
    ({"asset": "A" * 32}, "asset"),
    ({"asset": 12}, "asset"),
    ({"extra": 1}, "unknown field"),
    ({"position": 1, "channel": "0" * 32}, "exactly one"),
]


@pytest.mark.parametrize(("change", "named"), BAD_BODIES)
def test_bad_reports_are_refused_saying_why(api, box, film, change, named):
    body: dict[str, Any] = {"asset": film, "position": 1, **change}
    refused = report(api, box.token, **body)
    assert refused.status_code == 400, refused.text
    assert named in refused.json()["error"]["message"]


def test_a_report_missing_fields_or_not_json_is_refused(api, box, film):
    headers = {"Authorization": f"Bearer {box.token}"}
    missing = httpx.post(f"{api}/v1/activity", json={"asset": film}, headers=headers,
                         timeout=10)
    assert missing.status_code == 400
    naive = report(api, box.token, asset=film, position=1,
                   at=datetime.now().replace(tzinfo=None).isoformat())
    assert naive.status_code == 400 and "offset" in naive.json()["error"]["message"]
    position_of_a_channel = report(api, box.token, channel=film, position=3)
    assert position_of_a_channel.status_code == 400
    nan = httpx.post(f"{api}/v1/activity", content=b'{"asset": "%s", "position": NaN}' % (
        film.encode()), headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert nan.status_code == 400
    form = httpx.post(f"{api}/v1/activity", data={"asset": film}, headers=headers, timeout=10)
    assert form.status_code == 415
    huge = httpx.post(f"{api}/v1/activity", json={"profile": "x" * 70000}, headers=headers,
                      timeout=10)
    assert huge.status_code == 413


def test_unknown_content_is_not_found(api, box, family):
    for body in ({"asset": new_id(), "position": 1}, {"channel": new_id()}):
        missing = report(api, box.token, **body)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_rows_need_a_good_profile(api, box):
    assert row(api, box.token, profile="../../etc").status_code == 400
    no_profile = httpx.get(f"{api}/v1/activity/continue", timeout=10,
                           headers={"Authorization": f"Bearer {box.token}"})
    assert no_profile.status_code == 400 and "profile" in no_profile.json()["error"]["message"]
    assert row(api, box.token, limit="1000").status_code == 400


def _forged(services: Services, box: Box) -> str:
    """The box's own token, re-signed by a key that is not ours under our key id."""
    header = jwt.get_unverified_header(box.token)
    claims = jwt.decode(box.token, options={"verify_signature": False})
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                      headers={"kid": header["kid"], "typ": header["typ"]})


def test_only_a_box_s_valid_playback_token_is_taken(api, services, box, film):
    signer = services.signer
    refusals = {
        "unauthorized": None,
        "invalid_token": [_forged(services, box), "garbage",
                          signer.issue(["playback"], subject=box.user_id,
                                       device_id=box.device_id, ttl_s=-300)],
        "insufficient_scope": [signer.issue(["assets:read"], subject=box.user_id,
                                            device_id=box.device_id)],
        "forbidden": [signer.issue(["playback"], subject=box.user_id),  # no device
                      signer.issue(["playback"], device_id=box.device_id)],  # the operator
    }
    for code, tokens in refusals.items():
        for token in tokens or [None]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for answer in (
                    httpx.post(f"{api}/v1/activity", headers=headers, timeout=10, json={
                        "asset": film, "position": 1, "kind": "progress", "profile": "main",
                        "at": utcnow().isoformat()}),
                    httpx.get(f"{api}/v1/activity/continue", params={"profile": "main"},
                              headers=headers, timeout=10)):
                assert answer.json()["error"]["code"] == code, (code, answer.text)
                assert answer.status_code in (401, 403)
    assert items(api, box.token) == []


def test_a_revoked_box_is_refused(api, services, box, film):
    admin = {"Authorization": f"Bearer {services.signer.issue(['admin'])}"}
    assert httpx.post(f"{api}/v1/devices/{box.device_id}/revoke", headers=admin,
                      timeout=10).status_code == 200
    assert report(api, box.token, asset=film, position=1).status_code == 401
