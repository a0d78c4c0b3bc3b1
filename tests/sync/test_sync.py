"""Offline sync over real HTTP: a box (the reference client, its own SQLite cache)
syncs, goes offline while channels, the guide and entitlements change, comes back,
and holds what the server holds - also across many pages and changes made while
it syncs. Every change is made through the API, as the content team makes it."""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest

from stb_origin.db import changes
from stb_origin.db.types import utcnow
from stb_origin.services import Services
from stb_origin.sync.client import BoxCache, SyncClient
from stb_origin.sync.cursor import CHANGES, Cursor, seal
from tests.catalog.conftest import add_asset
from tests.drm.support import Box, household

UDP = "udp://239.1.1.1:5000"


class Admin:
    """The content team's side, through the API."""

    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(method, self.api + path, headers={
            **self.headers, **kwargs.pop("headers", {})}, timeout=30, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def channel(self, name: str, number: int | None = None,
                packages: list[str] | None = None) -> str:
        body = {"name": name, "sources": [UDP], "number": number, "packages": packages or []}
        channel_id: str = self.call("POST", "/v1/channels", json=body)["id"]
        # The guide names it by an XMLTV id of the same name.
        self.call("PUT", f"/v1/guide/mappings/{name.lower()}.tv", json={"channel": channel_id})
        return channel_id

    def guide(self, shows: list[tuple[str, datetime, str]], minutes: int = 30) -> None:
        """Programmes (XMLTV channel name, start, title), each ``minutes`` long."""
        lines = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv>']
        for name, start, title in shows:
            stop = start + timedelta(minutes=minutes)
            lines.append(f"<programme start={quoteattr(f'{start:%Y%m%d%H%M%S} +0000')}"
                         f" stop={quoteattr(f'{stop:%Y%m%d%H%M%S} +0000')}"
                         f" channel={quoteattr(name.lower() + '.tv')}>"
                         f"<title>{escape(title)}</title></programme>")
        lines.append("</tv>")
        self.call("POST", "/v1/guide/imports", content="\n".join(lines).encode(),
                  headers={"Content-Type": "application/xml"})

    def package(self) -> str:
        name = f"pkg-{secrets.token_hex(3)}"
        self.call("POST", "/v1/packages", json={"name": name})
        return name

    def title(self, kind: str, name: str, asset: str | None = None, **fields: Any) -> str:
        """A title, playing ``asset`` (a ready one) when given."""
        title_id: str = self.call("POST", "/v1/catalog/titles",
                                  json={"kind": kind, "name": name, **fields})["id"]
        if asset is not None:
            self.call("PUT", f"/v1/catalog/titles/{title_id}/assets/{asset}",
                      json={"role": "main"})
        return title_id

    def ready_asset(self, services: Services, package: str) -> str:
        """A ready asset (as the pipeline leaves one) in the package."""
        asset_id = add_asset(services.db)
        with services.db.session() as session:
            changes.record(session, changes.ASSET, [asset_id])
        self.call("POST", f"/v1/packages/{package}/assets", json={"asset": asset_id})
        return asset_id

    def grant(self, account: str, package: str, **window: str) -> str:
        entitlement: str = self.call("POST", "/v1/entitlements", json={
            "account": account, "package": package, **window})["id"]
        return entitlement


@pytest.fixture
def admin(api: str, services: Services) -> Admin:
    return Admin(api, services.signer.issue(["admin", "assets:read", "assets:write"]))


@pytest.fixture
def box(services: Services) -> Box:
    # What a subscriber's box carries: playback and its own account.
    return household(services, scopes=("playback", "account"))


@pytest.fixture
def caches(tmp_path: Path) -> Iterator[list[BoxCache]]:
    made: list[BoxCache] = []
    yield made
    for cache in made:
        cache.close()


def new_cache(tmp_path: Path, caches: list[BoxCache]) -> BoxCache:
    cache = BoxCache(tmp_path / f"box-{len(caches)}.db")
    caches.append(cache)
    return cache


def server_view(api: str, box: Box, tmp_path: Path, caches: list[BoxCache]) -> dict[str, Any]:
    """What the server holds for the box now: a full snapshot into a new cache."""
    fresh = new_cache(tmp_path, caches)
    SyncClient(api, box.token, fresh, limit=2000).sync()
    return fresh.view(utcnow())


def hour(offset_h: int) -> datetime:
    return utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=offset_h)


def test_a_box_back_from_an_outage_holds_what_the_server_holds(
        api: str, admin: Admin, box: Box, services: Services, tmp_path: Path,
        caches: list[BoxCache]) -> None:
    news_pkg, films_pkg = admin.package(), admin.package()
    news = admin.channel("News", 1, [news_pkg])
    sport = admin.channel("Sport", 2)
    gone = admin.channel("Gone", 3)
    admin.guide([("News", hour(h), f"News at {h}") for h in range(-30, 30, 2)]
                + [("Gone", hour(1), "Last show"), ("Sport", hour(26), "Match")])
    kept = admin.grant(box.account_id, news_pkg)
    films = admin.grant(box.account_id, films_pkg)
    film = admin.title("movie", "A film", admin.ready_asset(services, films_pkg))
    doomed_asset = admin.ready_asset(services, films_pkg)
    doomed = admin.title("movie", "Loses its asset", doomed_asset)
    show = admin.title("series", "A show")
    episode = admin.title("episode", "Pilot", admin.ready_asset(services, films_pkg),
                          series=show, season=1, episode=1)
    unentitled = admin.title("movie", "Not for this box",
                             admin.ready_asset(services, admin.package()))
    cache = new_cache(tmp_path, caches)
    client = SyncClient(api, box.token, cache, limit=2)
    assert client.sync() >= 3  # a page holds the entitlements or a channel or two
    before = cache.view(utcnow())
    assert before == server_view(api, box, tmp_path, caches)
    assert before["channel"][news] == {"name": "News", "number": 1, "packages": [news_pkg]}
    assert set(before["title"]) == {film, doomed, show, episode}
    assert unentitled not in before["title"]
    # Yesterday's and later programmes, by channel and UTC day; nothing older.
    news_days = sorted(key for key in before["guide_day"] if key.startswith(news))
    first_day = (utcnow() - timedelta(days=1)).date()
    assert news_days and all(key.split("/")[1] >= first_day.isoformat() for key in news_days)

    # Offline: the content team changes everything a box keeps.
    admin.call("PATCH", f"/v1/channels/{sport}", json={"name": "Sport HD",
                                                       "packages": [films_pkg]})
    admin.call("DELETE", f"/v1/channels/{gone}")
    added = admin.channel("Kids", 4)
    admin.guide([("News", hour(4), "Breaking"), ("Kids", hour(5), "Cartoons")], minutes=120)
    admin.call("POST", f"/v1/entitlements/{kept}/revoke")
    later = admin.grant(box.account_id, films_pkg,
                        valid_from=(utcnow() + timedelta(days=2)).isoformat())
    admin.call("PATCH", f"/v1/catalog/titles/{film}", json={"name": "A film, restored"})
    admin.call("DELETE", f"/v1/catalog/titles/{show}")  # and its episode with it
    admin.call("DELETE", f"/v1/assets/{doomed_asset}")
    added_film = admin.title("movie", "New this week", admin.ready_asset(services, films_pkg))

    pages = client.sync()
    after = cache.view(utcnow())
    assert after == server_view(api, box, tmp_path, caches)
    assert pages >= 1
    assert after["channel"][sport]["name"] == "Sport HD"
    assert after["channel"][sport]["packages"] == [films_pkg]
    assert gone not in after["channel"]
    assert not [key for key in after["guide_day"] if key.startswith(gone)]
    assert added in after["channel"]
    titles = [p["title"] for day, found in after["guide_day"].items() if day.startswith(news)
              for p in found["programmes"]]
    assert "Breaking" in titles and "News at 4" not in titles
    held = after["entitlements"][box.account_id]["items"]
    # the revoked one is over; the future one waits
    assert sorted(e["id"] for e in held) == sorted([films, later])
    assert set(after["title"]) == {film, added_film}
    assert after["title"][film]["name"] == "A film, restored"


def test_changes_made_while_a_box_syncs_are_not_lost(
        api: str, admin: Admin, box: Box, tmp_path: Path, caches: list[BoxCache]) -> None:
    channels = [admin.channel(f"Ch{n}", n) for n in range(1, 13)]
    admin.guide([(f"Ch{n}", hour(h), f"Show {n}.{h}") for n in range(1, 13)
                 for h in range(0, 48, 6)])
    package = admin.package()
    seen: list[dict[str, Any]] = []

    def meddle(page: dict[str, Any]) -> None:
        seen.append(page)
        step = len(seen)
        if step == 1:  # mid-snapshot: one channel already sent, one not yet
            admin.call("PATCH", f"/v1/channels/{channels[0]}", json={"name": "Renamed first"})
            admin.call("PATCH", f"/v1/channels/{channels[-1]}", json={"name": "Renamed last"})
            admin.call("DELETE", f"/v1/channels/{channels[1]}")
        elif step == 2:
            admin.guide([("Ch3", hour(7), "Inserted")])
            admin.grant(box.account_id, package)

    cache = new_cache(tmp_path, caches)
    SyncClient(api, box.token, cache, limit=10).sync(between_pages=meddle)
    assert seen[0]["reset"] and seen[0]["phase"] == "snapshot"
    view = cache.view(utcnow())
    assert view == server_view(api, box, tmp_path, caches)
    assert view["channel"][channels[0]]["name"] == "Renamed first"
    assert view["channel"][channels[-1]]["name"] == "Renamed last"
    assert channels[1] not in view["channel"]
    assert [e["package"] for e in view["entitlements"][box.account_id]["items"]] == [package]


def test_what_the_clock_changes_reaches_a_box_that_syncs_after_it(
        api: str, admin: Admin, box: Box, services: Services, tmp_path: Path,
        caches: list[BoxCache]) -> None:
    """No write happens when a window opens or closes: the sync finds those itself."""
    package = admin.package()
    soon = (utcnow() + timedelta(seconds=2)).isoformat()
    admin.grant(box.account_id, package)
    opening = admin.title("movie", "Opens soon", admin.ready_asset(services, package),
                          available_from=soon)
    closing = admin.title("movie", "Closes soon", admin.ready_asset(services, package),
                          available_until=soon)
    other = admin.package()
    admin.grant(box.account_id, other, valid_from=soon)
    starting = admin.title("movie", "Entitled soon", admin.ready_asset(services, other))
    cache = new_cache(tmp_path, caches)
    client = SyncClient(api, box.token, cache)
    client.sync()
    assert set(cache.view(utcnow())["title"]) == {closing}
    time.sleep(2.5)
    client.sync()
    assert set(cache.view(utcnow())["title"]) == {opening, starting}
    assert cache.view(utcnow()) == server_view(api, box, tmp_path, caches)


def test_nothing_changed_is_one_small_page(
        api: str, admin: Admin, box: Box, tmp_path: Path, caches: list[BoxCache]) -> None:
    admin.channel("News", 1)
    # Granted just before the snapshot: in it, so no cause for another one after it.
    admin.grant(box.account_id, admin.package())
    cache = new_cache(tmp_path, caches)
    client = SyncClient(api, box.token, cache)
    client.sync()
    page = client.fetch(cache.cursor)
    assert page["upserts"] == [] and page["deletes"] == []
    assert not page["reset"] and not page["more"] and page["phase"] == "changes"


def test_a_cursor_older_than_the_log_keeps_starts_a_new_snapshot(
        api: str, admin: Admin, box: Box, services: Services) -> None:
    admin.channel("News", 1)
    then = utcnow() - timedelta(days=services.settings.sync_cursor_days + 1)
    old = Cursor(CHANGES, 0, then, then)
    page = httpx.get(api + "/v1/sync", headers=box.auth(),
                     params={"cursor": seal(services.envelope, box.account_id, old)}).json()
    assert page["reset"] and [u["kind"] for u in page["upserts"]][:2] == ["entitlements",
                                                                           "channel"]


def test_pages_are_gzipped_when_the_box_accepts_it(
        api: str, admin: Admin, box: Box) -> None:
    for n in range(5):
        admin.channel(f"Channel number {n}", n + 1)
    admin.guide([(f"Channel number {n}", hour(h), "The evening news") for n in range(5)
                 for h in range(6)])
    plain = httpx.get(api + "/v1/sync", headers={**box.auth(), "Accept-Encoding": "identity"})
    assert plain.headers.get("content-encoding") is None
    with httpx.stream("GET", api + "/v1/sync",
                      headers={**box.auth(), "Accept-Encoding": "gzip"}) as packed:
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["cache-control"] == "no-store"
        raw = b"".join(packed.iter_raw())
    assert len(raw) < len(plain.content)
    assert json.loads(gzip.decompress(raw))["upserts"] == plain.json()["upserts"]


# --- bad input ------------------------------------------------------------------------

def _error(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    return str(error["message"])


@pytest.mark.parametrize("cursor", [
    "garbage", "", "A" * 600, "Zm9v", "é", "../../etc/passwd",
    # valid base64 of the wrong length, and of the right shape but not sealed by us
    "AQ" + "A" * 80,
])
def test_a_malformed_cursor_is_a_400_never_a_silent_restart(
        api: str, box: Box, cursor: str) -> None:
    answer = httpx.get(api + "/v1/sync", headers=box.auth(), params={"cursor": cursor})
    message = _error(answer, 400, "bad_cursor")
    assert "cursor" in message


def test_a_forged_or_borrowed_cursor_is_a_400(
        api: str, admin: Admin, box: Box, services: Services) -> None:
    admin.channel("News", 1)
    page = httpx.get(api + "/v1/sync", headers=box.auth(), params={"limit": 1}).json()
    cursor = page["cursor"]
    # (not the last character: its low bits may be padding base64 ignores)
    for i in (0, len(cursor) // 2, len(cursor) - 2):
        flipped = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]
        _error(httpx.get(api + "/v1/sync", headers=box.auth(), params={"cursor": flipped}),
               400, "bad_cursor")
    _error(httpx.get(api + "/v1/sync", headers=box.auth(), params={"cursor": cursor[:-4]}),
           400, "bad_cursor")
    # Another household's box cannot use this one's cursor (nor learn from it).
    neighbour = household(services, scopes=("playback", "account"))
    _error(httpx.get(api + "/v1/sync", headers=neighbour.auth(), params={"cursor": cursor}),
           400, "bad_cursor")
    # The owner still can.
    assert httpx.get(api + "/v1/sync", headers=box.auth(),
                     params={"cursor": cursor}).status_code == 200


@pytest.mark.parametrize("limit", ["0", "-1", "2001", "abc", "1.5", "١٠"])
def test_a_bad_limit_is_a_400(api: str, box: Box, limit: str) -> None:
    _error(httpx.get(api + "/v1/sync", headers=box.auth(), params={"limit": limit}),
           400, "bad_request")


def test_tokens_that_are_no_box_of_an_account_are_refused(
        api: str, box: Box, services: Services) -> None:
    url = api + "/v1/sync"
    _error(httpx.get(url), 401, "unauthorized")
    _error(httpx.get(url, headers={"Authorization": "Bearer not.a.token"}), 401,
           "invalid_token")
    forged = box.token[:-4] + ("AAAA" if not box.token.endswith("AAAA") else "BBBB")
    _error(httpx.get(url, headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_token")
    expired = services.signer.issue(["playback"], subject=box.user_id, device_id=box.device_id,
                                    ttl_s=-120)
    _error(httpx.get(url, headers={"Authorization": f"Bearer {expired}"}), 401,
           "invalid_token")
    content_team = services.signer.issue(["assets:read"])
    _error(httpx.get(url, headers={"Authorization": f"Bearer {content_team}"}), 403,
           "insufficient_scope")
    operator = services.signer.issue(["playback"])
    _error(httpx.get(url, headers={"Authorization": f"Bearer {operator}"}), 403, "forbidden")


# --- the change log -------------------------------------------------------------------

def test_an_entitlement_change_reaches_only_its_own_account(
        api: str, admin: Admin, box: Box, services: Services, tmp_path: Path,
        caches: list[BoxCache]) -> None:
    neighbour = household(services, scopes=("playback", "account"))
    mine, theirs = new_cache(tmp_path, caches), new_cache(tmp_path, caches)
    SyncClient(api, box.token, mine).sync()
    SyncClient(api, neighbour.token, theirs).sync()
    admin.grant(box.account_id, admin.package())
    assert httpx.get(api + "/v1/sync", headers=neighbour.auth(),
                     params={"cursor": theirs.cursor}).json()["upserts"] == []
    page = httpx.get(api + "/v1/sync", headers=box.auth(), params={"cursor": mine.cursor}).json()
    assert [(u["kind"], u["id"]) for u in page["upserts"]] == [("entitlements", box.account_id)]
    assert box.account_id not in json.dumps(theirs.view(utcnow()))


def test_the_sweep_forgets_changes_older_than_a_cursor_lives(services: Services) -> None:
    from stb_origin.app.sweeper import sweep_once

    with services.db.session() as session:
        changes.record(session, changes.CHANNEL, ["a" * 32])
    days = services.settings.sync_cursor_days
    sweep_once(services, datetime.now(UTC) + timedelta(days=days))
    with services.db.session() as session:
        assert len(changes.after(session, 0, "b" * 32, 10)) == 1
    sweep_once(services, datetime.now(UTC) + timedelta(days=days + 1, minutes=1))
    with services.db.session() as session:
        assert changes.after(session, 0, "b" * 32, 10) == []


def test_an_unknown_change_kind_is_a_programming_error(services: Services) -> None:
    with services.db.session() as session, pytest.raises(ValueError, match="unknown change"):
        changes.record(session, "programme", ["x"])
