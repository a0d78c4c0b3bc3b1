"""The guide API over real HTTP: imports, what boxes get, caching, and who may do what."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from stb_origin.accounts import users
from stb_origin.accounts.models import Role
from stb_origin.guide import routes
from stb_origin.guide.models import Programme
from stb_origin.live.urls import catchup_master, startover_master
from stb_origin.services import Services
from tests.guide.conftest import Show, document, make_channel, xmltv_time
from tests.guide.test_xmltv import BILLION_LAUGHS, EXTERNAL_DTD, EXTERNAL_ENTITY
from tests.support.logs import captured

XML = {"Content-Type": "application/xml"}


def _call(api: str, method: str, path: str, token: str | None = None,
          **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, api + path, headers=headers, timeout=30, **kwargs)


def _import(api: str, token: str, body: bytes) -> httpx.Response:
    return _call(api, "POST", "/v1/guide/imports", token, content=body, headers=XML)


def _stored(services: Services, channel_id: str | None = None
            ) -> list[tuple[str, datetime, datetime]]:
    with services.db.session() as session:
        query = select(Programme).order_by(Programme.channel_id, Programme.starts_at)
        if channel_id is not None:
            query = query.where(Programme.channel_id == channel_id)
        return [(p.title, p.starts_at, p.ends_at) for p in session.scalars(query)]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_an_import_stores_utc_and_reports_what_it_skipped(
        api: str, services: Services, operator: str) -> None:
    london = make_channel(services, "London", 1, xmltv_id="london.example")
    paris = make_channel(services, "Paris", 2, xmltv_id="paris.example")
    shows = [
        Show("london.example", "20260329003000 +0000", "20260329023000 +0100", "Spring"),
        Show("london.example", "20261025013000 +0100", "20261025013000 +0000", "Autumn"),
        Show("paris.example", "20260615200000 +0100", "20260615210000 +0100", "Plus one"),
        Show("paris.example", "20260615160000 -0500", "20260615170000 -0500", "Minus five"),
        Show("paris.example", "20260615203000 +0100", "20260615213000 +0100", "Overlapping"),
        Show("paris.example", "20260616100000 +0000", "20260616090000 +0000", "Backwards"),
        Show("paris.example", "19600101000000 +0000", "19600101010000 +0000", "Ancient"),
        Show("tokyo.example", "20260615200000 +0900", "20260615210000 +0900", "Unmapped"),
    ]
    response = _import(api, operator, document(shows, ["london.example", "paris.example"]))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    report = response.json()
    assert (report["imported"], report["skipped"], report["channels"]) == (4, 4, 2)
    assert report["skipped_by_reason"] == {"absurd_time": 1, "end_before_start": 1,
                                           "overlap": 1, "unknown_channel": 1}
    problems = {p["title"]: p for p in report["problems"]}
    assert problems["Unmapped"]["reason"] == "unknown_channel"
    assert "tokyo.example" in problems["Unmapped"]["message"]
    assert problems["Overlapping"]["reason"] == "overlap"
    assert "'Plus one'" in problems["Overlapping"]["message"]
    assert _stored(services, london) == [
        ("Spring", _utc(2026, 3, 29, 0, 30), _utc(2026, 3, 29, 1, 30)),
        ("Autumn", _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 25, 1, 30)),
    ]
    assert _stored(services, paris) == [
        ("Plus one", _utc(2026, 6, 15, 19), _utc(2026, 6, 15, 20)),
        ("Minus five", _utc(2026, 6, 15, 21), _utc(2026, 6, 15, 22)),
    ]


def test_importing_again_replaces_the_span_it_brings(
        api: str, services: Services, operator: str) -> None:
    channel = make_channel(services, "One", xmltv_id="one")
    day = [Show("one", f"20260615{h:02d}0000 +0000", f"20260615{h + 1:02d}0000 +0000",
                f"Hour {h}") for h in range(10, 16)]
    first = _import(api, operator, document(day)).json()
    again = _import(api, operator, document(day)).json()
    assert (first["imported"], first["replaced"]) == (6, 0)
    assert (again["imported"], again["replaced"]) == (6, 6)
    assert len(_stored(services, channel)) == 6
    # A correction for 12:00-14:00 replaces only what it covers.
    fix = [Show("one", "20260615120000 +0000", "20260615140000 +0000", "Film")]
    assert _import(api, operator, document(fix)).json()["replaced"] == 2
    assert [title for title, _, _ in _stored(services, channel)] == [
        "Hour 10", "Hour 11", "Film", "Hour 14", "Hour 15"]


def test_broken_xml_is_refused_with_its_line_and_nothing_is_imported(
        api: str, services: Services, operator: str) -> None:
    make_channel(services, "One", xmltv_id="one")
    shows = [Show("one", f"20260615{h:02d}0000", f"20260615{h + 1:02d}0000", f"Hour {h}")
             for h in range(10, 14)]
    body = document(shows).replace(b"<title lang=\"en\">Hour 13</title>",
                                   b"<title>Hour 13</programme>")
    response = _import(api, operator, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_xml"
    assert "line 14" in error["message"] and "mismatched tag" in error["message"]
    assert _stored(services) == []


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD],
                         ids=["billion-laughs", "external-entity", "external-dtd"])
def test_hostile_xmltv_is_refused_and_reads_nothing(
        api: str, services: Services, operator: str, body: bytes) -> None:
    make_channel(services, "C", xmltv_id="c")
    passwd = Path("/etc/passwd").read_text()
    secret = passwd.splitlines()[0]
    with captured(logging.DEBUG) as logs:
        response = _import(api, operator, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "unsafe_xml"
    assert secret not in response.text
    assert secret not in "\n".join(logs.raw)
    assert _stored(services) == []


def test_an_import_must_be_xml_and_not_too_large(api: str, operator: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = _call(api, "POST", "/v1/guide/imports", operator, content=b"<tv/>",
                  headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415
    empty = _import(api, operator, b"")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_file"
    # The limit holds while the body streams (chunked: no Content-Length to go by).
    monkeypatch.setattr(routes, "MAX_XMLTV_BYTES", 1000)
    huge = _call(api, "POST", "/v1/guide/imports", operator,
                 content=iter([document([]), b"<!--" + b"x" * 2000 + b"-->"]), headers=XML)
    assert huge.status_code == 413, huge.text


def _forged_token() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(datetime.now(UTC).timestamp())
    return jwt.encode({"sub": "operator", "scope": "admin", "iat": now, "exp": now + 600,
                       "iss": "stb-origin", "jti": "forged"}, key, algorithm="ES256",
                      headers={"typ": "at+jwt", "kid": "not-ours"})


ADMIN_ROUTES = [
    ("POST", "/v1/guide/imports"), ("GET", "/v1/guide/mappings"),
    ("PUT", "/v1/guide/mappings/x"), ("GET", "/v1/guide/mappings/x"),
    ("DELETE", "/v1/guide/mappings/x"), ("POST", "/v1/guide/sources"),
    ("GET", "/v1/guide/sources"), ("GET", "/v1/guide/sources/" + "a" * 32),
    ("PATCH", "/v1/guide/sources/" + "a" * 32), ("DELETE", "/v1/guide/sources/" + "a" * 32),
    ("POST", f"/v1/guide/sources/{'a' * 32}/fetch"),
]


def test_admin_routes_refuse_everyone_else(api: str, services: Services, box: str) -> None:
    with services.db.session() as session:
        subscriber = users.create_user(session, "sub@example.com", role=Role.SUBSCRIBER)
    # Asks for admin, but is no admin.
    pretender = services.signer.issue(["admin", "account"], subject=subscriber.id)
    for method, path in ADMIN_ROUTES:
        for token, status in ((None, 401), (_forged_token(), 401), (box, 403),
                              (pretender, 403)):
            response = _call(api, method, path, token, content=document([]),
                             headers=XML)
            assert response.status_code == status, (method, path, token, response.text)


def test_box_routes_need_a_valid_token(api: str, services: Services) -> None:
    channel = make_channel(services, "C")
    for path in ("/v1/guide", f"/v1/channels/{channel}/now"):
        assert _call(api, "GET", path).status_code == 401
        assert _call(api, "GET", path, _forged_token()).status_code == 401


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _around_now(xmltv_id: str, now: datetime, hours: range, label: str) -> list[Show]:
    """Hour-long programmes starting at now + h hours, written at -0500."""
    return [Show(xmltv_id, xmltv_time(now + timedelta(hours=h), -300),
                 xmltv_time(now + timedelta(hours=h + 1), -300), f"{label} {h:+d}")
            for h in hours]


def test_the_guide_window_and_channel_filter(api: str, services: Services, operator: str,
                                             box: str) -> None:
    now = _now() - timedelta(minutes=30)
    a = make_channel(services, "A", 1, xmltv_id="a")
    b = make_channel(services, "B", 2, xmltv_id="b")
    shows = _around_now("a", now, range(-6, 7), "A") + _around_now("b", now, range(-6, 7), "B")
    assert _import(api, operator, document(shows)).json()["imported"] == 26
    start, end = now - timedelta(hours=2), now + timedelta(hours=2)
    response = _call(api, "GET", "/v1/guide", box, params={
        "from": str(int(start.timestamp())), "to": end.isoformat(), "channels": a})
    assert response.status_code == 200, response.text
    guide = response.json()
    hour_from = start.replace(minute=0)
    hour_to = end.replace(minute=0) + (timedelta(hours=1) if end.minute else timedelta())
    assert (guide["from"], guide["to"]) == (hour_from.isoformat(), hour_to.isoformat())
    assert [c["id"] for c in guide["channels"]] == [a]
    titles = [p["title"] for p in guide["channels"][0]["programmes"]]
    expected = [f"A {h:+d}" for h in range(-6, 7)
                if now + timedelta(hours=h + 1) > hour_from and now + timedelta(hours=h) < hour_to]
    assert titles == expected
    both = _call(api, "GET", f"/v1/guide?channels={b},{a}", box).json()
    assert [c["name"] for c in both["channels"]] == ["A", "B"]
    assert _call(api, "GET", "/v1/guide?from=yesterday", box).status_code == 400
    assert _call(api, "GET", "/v1/guide?from=2026-01-01T00:00:00Z&to=2026-01-05T00:00:00Z",
                 box).status_code == 400
    assert _call(api, "GET", "/v1/guide?channels=../etc", box).status_code == 400


def test_answers_are_public_for_a_time_bucket_with_an_etag(
        api: str, services: Services, operator: str, box: str) -> None:
    now = _now()
    channel = make_channel(services, "A", xmltv_id="a")
    on_air_ends = now + timedelta(minutes=40)
    shows = [Show("a", xmltv_time(now - timedelta(minutes=20)), xmltv_time(on_air_ends), "On"),
             Show("a", xmltv_time(on_air_ends), xmltv_time(on_air_ends + timedelta(hours=1)),
                  "Later")]
    _import(api, operator, document(shows))
    for path in (f"/v1/channels/{channel}/now", f"/v1/guide?channels={channel}"):
        first = _call(api, "GET", path, box)
        assert first.status_code == 200, first.text
        cache = first.headers["cache-control"]
        assert cache.startswith("public, max-age=")
        max_age = int(cache.rsplit("=", 1)[1])
        # Kept no longer than 300 s, and never past the end of the programme on air.
        assert 0 < max_age <= min(300, (on_air_ends - datetime.now(UTC)).total_seconds() + 1)
        etag = first.headers["etag"]
        again = _call(api, "GET", path, box, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        other = _call(api, "GET", path, box, headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.json() == first.json()
    # A new import changes the answer and its tag.
    before = _call(api, "GET", f"/v1/channels/{channel}/now", box).headers["etag"]
    renamed = [Show("a", s.start, s.stop, s.title + " (new)") for s in shows]
    _import(api, operator, document(renamed))
    after = _call(api, "GET", f"/v1/channels/{channel}/now", box,
                  headers={"If-None-Match": before})
    assert after.status_code == 200 and after.headers["etag"] != before
    assert after.json()["now"]["title"] == "On (new)"


def test_now_and_next(api: str, services: Services, operator: str, box: str) -> None:
    now = _now()
    channel = make_channel(services, "A", xmltv_id="a")
    empty = _call(api, "GET", f"/v1/channels/{channel}/now", box).json()
    assert empty == {"channel": channel, "now": None, "next": None}
    shows = [Show("a", xmltv_time(now - timedelta(hours=1), 60), xmltv_time(now, 60), "Past"),
             Show("a", xmltv_time(now, 60), xmltv_time(now + timedelta(hours=1), 60), "Now",
                  "<desc>&lt;script&gt;alert(1)&lt;/script&gt;</desc>"),
             Show("a", xmltv_time(now + timedelta(hours=2), 60),
                  xmltv_time(now + timedelta(hours=3), 60), "After a gap")]
    _import(api, operator, document(shows))
    answer = _call(api, "GET", f"/v1/channels/{channel}/now", box).json()
    assert answer["now"]["title"] == "Now" and answer["next"]["title"] == "After a gap"
    assert answer["now"]["description"] == "<script>alert(1)</script>"  # data, in JSON
    assert answer["now"]["start"] == now.isoformat()
    assert _call(api, "GET", f"/v1/channels/{'0' * 32}/now", box).status_code == 404
    assert _call(api, "GET", "/v1/channels/nope/now", box).status_code == 404


def test_start_over_and_catch_up_only_inside_the_dvr_window(
        api: str, services: Services, operator: str, box: str) -> None:
    now = _now()
    channel = make_channel(services, "A", xmltv_id="a", dvr_window_s=2 * 3600)

    def at(minutes: int) -> datetime:
        return now + timedelta(minutes=minutes)

    spans = {"Too old": (-240, -150), "Started before the window": (-150, -90),
             "Ended, inside": (-90, -30), "On air": (-30, 30), "Coming": (30, 90)}
    shows = [Show("a", xmltv_time(at(s)), xmltv_time(at(e)), title)
             for title, (s, e) in spans.items()]
    _import(api, operator, document(shows))
    guide = _call(api, "GET", f"/v1/guide?from={int(at(-240).timestamp())}"
                              f"&to={int(at(90).timestamp())}&channels={channel}", box).json()
    paths = {p["title"]: (p["startover"], p["catchup"])
             for p in guide["channels"][0]["programmes"]}
    assert paths == {
        "Too old": (None, None),
        "Started before the window": (None, None),
        "Ended, inside": (None, catchup_master(channel, at(-90), at(-30))),
        "On air": (startover_master(channel, at(-30)), None),
        "Coming": (None, None),
    }
    now_next = _call(api, "GET", f"/v1/channels/{channel}/now", box).json()
    assert now_next["now"]["startover"] == startover_master(channel, at(-30))


def test_the_channel_mapping(api: str, services: Services, operator: str) -> None:
    channel = make_channel(services, "A")
    other = make_channel(services, "B")
    put = _call(api, "PUT", "/v1/guide/mappings/bbc1.bbc.co.uk", operator,
                json={"channel": channel})
    assert put.status_code == 201 and put.json()["channel"] == channel
    moved = _call(api, "PUT", "/v1/guide/mappings/bbc1.bbc.co.uk", operator,
                  json={"channel": other})
    assert moved.status_code == 200 and moved.json()["channel"] == other
    assert _call(api, "PUT", "/v1/guide/mappings/x", operator,
                 json={"channel": "f" * 32}).status_code == 404
    assert _call(api, "PUT", "/v1/guide/mappings/x", operator,
                 json={"chanel": channel}).status_code == 400
    listed = _call(api, "GET", f"/v1/guide/mappings?channel={other}", operator).json()
    assert [m["xmltv_id"] for m in listed["items"]] == ["bbc1.bbc.co.uk"]
    assert _call(api, "GET", "/v1/guide/mappings/bbc1.bbc.co.uk", operator).status_code == 200
    assert _call(api, "DELETE", "/v1/guide/mappings/bbc1.bbc.co.uk",
                 operator).status_code == 204
    assert _call(api, "GET", "/v1/guide/mappings/bbc1.bbc.co.uk", operator).status_code == 404


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/guide.xml",
                                 "gopher://example.com/", "http://", "/relative.xml",
                                 "http://user:secret@example.com/guide.xml"])
def test_a_source_must_be_an_http_url(api: str, operator: str, url: str) -> None:
    response = _call(api, "POST", "/v1/guide/sources", operator, json={"url": url})
    assert response.status_code == 400, response.text


def test_guide_sources_crud(api: str, operator: str) -> None:
    created = _call(api, "POST", "/v1/guide/sources", operator,
                    json={"url": "https://guide.example/tv.xml", "refresh_seconds": 3600})
    assert created.status_code == 201, created.text
    source = created.json()
    assert created.headers["location"] == f"/v1/guide/sources/{source['id']}"
    assert source["last_status"] is None and source["refresh_seconds"] == 3600
    assert _call(api, "POST", "/v1/guide/sources", operator,
                 json={"url": "https://g.example/", "refresh_seconds": 5}).status_code == 400
    path = f"/v1/guide/sources/{source['id']}"
    changed = _call(api, "PATCH", path, operator, json={"refresh_seconds": 7200}).json()
    assert changed["refresh_seconds"] == 7200
    assert _call(api, "PATCH", path, operator,
                 json={"url": "file:///etc/passwd"}).status_code == 400
    listed = _call(api, "GET", "/v1/guide/sources", operator).json()
    assert [s["id"] for s in listed["items"]] == [source["id"]]
    assert _call(api, "DELETE", path, operator).status_code == 204
    assert _call(api, "GET", path, operator).status_code == 404
