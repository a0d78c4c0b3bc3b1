"""/graphql over real HTTP: what a home screen asks, in a constant number of SQL
statements however many channels; entitlements as the key path sees them; every
limit refused before anything runs, with the limit named."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert

from stb_origin.accounts import entitlements, packages
from stb_origin.app import create_app
from stb_origin.assets.channels import Channel
from stb_origin.catalog.models import Title
from stb_origin.catalog.titles import TitleFields, create_title, link_asset
from stb_origin.db.types import new_id, utcnow
from stb_origin.guide.models import Programme
from stb_origin.services import Services
from tests.catalog.conftest import add_asset
from tests.drm.support import Box, household, revoke
from tests.support.http import run_server

HOME = """
query Home($first: Int!) {
  channels(first: $first) {
    items { id name number entitled
            now { title start end startover }
            next { title start }
            guide(hours: 6) { title start end } }
    next
  }
  entitlements { package validFrom validUntil }
}"""


def channels_with_guide(services: Services, count: int) -> list[str]:
    """Channels numbered from 1, each with a programme every 30 minutes around now."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    ids = [new_id() for _ in range(count)]
    with services.db.session() as session:
        taken = session.query(Channel).count()
        session.execute(insert(Channel), [
            {"id": cid, "name": f"Channel {taken + n}", "number": taken + n + 1,
             "sources": ["udp://239.0.0.1:1"], "ladder": "auto", "revision": 1, "epoch": 0,
             "status": "live"} for n, cid in enumerate(ids)])
        session.execute(insert(Programme), [
            {"id": new_id(), "channel_id": cid, "starts_at": now + timedelta(minutes=30 * k),
             "ends_at": now + timedelta(minutes=30 * (k + 1)), "title": f"Show {k}",
             "categories": [], "xmltv_channel": "x"}
            for cid in ids for k in range(-4, 16)])
    return ids


def ask(api: str, token: str | None, query: str, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(api + "/graphql", json={"query": query, "variables": variables},
                      headers=headers, timeout=30)


# The server's background tasks share the engine: the webhook consumer hands out due
# attempts every half second, the guide poller and the sweeper look for work. Their
# statements are not the query's.
BACKGROUND_TABLES = ("webhook_", "guide_sources", "tus_uploads")


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not any(table in statement for table in BACKGROUND_TABLES):
            seen.append(statement)

    event.listen(services.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(services.db.engine, "before_cursor_execute", count)


@pytest.fixture
def box(services: Services) -> Box:
    return household(services, scopes=("playback", "account"))


def test_a_home_screen_of_50_channels_costs_what_one_of_5_costs(
        api: str, services: Services, box: Box) -> None:
    channels_with_guide(services, 5)
    ask(api, box.token, HOME, first=5)  # warm: the token check's first sight of the box
    with statements(services) as small:
        five = ask(api, box.token, HOME, first=5)
    channels_with_guide(services, 45)
    with statements(services) as large:
        fifty = ask(api, box.token, HOME, first=50)
    assert five.status_code == fifty.status_code == 200, fifty.text
    page = fifty.json()["data"]["channels"]
    assert len(page["items"]) == 50 and page["next"] is None
    # six hours of half-hour programmes from now: 12, or 13 when now is not on the half hour
    assert all(c["now"] and c["next"] and len(c["guide"]) in (12, 13) for c in page["items"])
    assert [c["number"] for c in page["items"]] == list(range(1, 51))
    # A constant number of statements: not one (or three) per channel.
    assert len(large) == len(small), (len(small), len(large))
    # who calls (4), the page (2), now/next (3), the guide (2), the entitlements (1)
    assert len(large) <= 12


# The page size written in the query, so that its cost is counted for that size.
CATALOG = """
query Catalog {
  titles(first: FIRST) {
    items { id kind name genres rating { scheme ageLimit }
            assets { id role playback renditions { height codecs } }
            episodes { name season episode assets { id } } }
    next
  }
}"""


def catalog(services: Services, box: Box, movies: int, series: int) -> dict[str, str]:
    """Movies and series of three episodes, each playing a ready asset of a package the
    box's account is entitled to; returns title ids by name."""
    package = f"pkg-{secrets.token_hex(3)}"
    with services.db.session() as session:
        packages.create_package(session, package)
        entitlements.grant(session, box.account_id, package)
    ids: dict[str, str] = {}

    assets = iter([add_asset(services.db) for _ in range(movies + 3 * series)])

    def playing(session: Any, title: Title) -> None:
        asset_id = next(assets)
        packages.add_asset(session, package, asset_id)
        link_asset(session, title.id, asset_id, "main")

    with services.db.session() as session:
        for n in range(series):
            show = create_title(session, TitleFields(kind="series", name=f"Series {n}",
                                                     given={"kind", "name"}))
            ids[show.name] = show.id
            for e in range(1, 4):
                episode = create_title(session, TitleFields(
                    kind="episode", name=f"S{n} E{e}", series=show.id, season=1, episode=e,
                    given={"kind", "name", "series", "season", "episode"}))
                playing(session, episode)
        # Newest first: a page starts with the movies, then series and their episodes.
        for n in range(movies):
            movie = create_title(session, TitleFields(kind="movie", name=f"Movie {n}",
                                                      given={"kind", "name"}))
            playing(session, movie)
            ids[movie.name] = movie.id
    return ids


def test_a_page_of_50_titles_with_episodes_and_assets_costs_what_one_of_6_costs(
        api: str, services: Services, box: Box) -> None:
    catalog(services, box, movies=2, series=20)
    ask(api, box.token, CATALOG.replace("FIRST", "6"))  # warm
    # The newest 6: two movies, the newest series' three episodes and that series.
    with statements(services) as small:
        six = ask(api, box.token, CATALOG.replace("FIRST", "6"))
    with statements(services) as large:
        fifty = ask(api, box.token, CATALOG.replace("FIRST", "50"))
    assert six.status_code == fifty.status_code == 200, fifty.text
    items = fifty.json()["data"]["titles"]["items"]
    assert len(items) == 50 and len(six.json()["data"]["titles"]["items"]) == 6
    assert {t["kind"] for t in six.json()["data"]["titles"]["items"]} == {
        "movie", "episode", "series"}
    shows = [t for t in items if t["kind"] == "series"]
    assert shows and all([e["episode"] for e in t["episodes"]] == [1, 2, 3] for t in shows)
    assert all(t["assets"] == [] for t in shows)
    movies = [t for t in items if t["kind"] == "movie"]
    playing = [t for t in items if t["kind"] != "series"]
    assert movies and all(len(t["assets"]) == 1 and t["assets"][0]["renditions"]
                          for t in playing)
    assert movies[0]["assets"][0]["playback"].endswith(
        "/v1/playback/" + movies[0]["assets"][0]["id"])
    # A constant number of statements, not one (or more) per title: who calls (4), the
    # page with its assets, genres and artwork (6), the episodes with theirs (5), renditions
    assert len(large) == len(small), (len(small), len(large))
    assert len(large) <= 16, len(large)


def test_channels_page_by_number_and_say_which_the_box_may_play(
        api: str, services: Services, box: Box) -> None:
    ids = channels_with_guide(services, 3)
    name = f"pkg-{secrets.token_hex(3)}"
    with services.db.session() as session:
        packages.create_package(session, name)
        packages.set_channel_packages(session, ids[1], [name])
        entitlements.grant(session, box.account_id, name)
    first = ask(api, box.token, "{ channels(first: 2) { items { id entitled packages } next } }")
    page = first.json()["data"]["channels"]
    assert [c["id"] for c in page["items"]] == ids[:2]
    assert [c["entitled"] for c in page["items"]] == [False, True]
    assert page["items"][1]["packages"] == [name]
    rest = ask(api, box.token, "query($after: String) { channels(first: 2, after: $after)"
               " { items { id } next } }", after=page["next"]).json()["data"]["channels"]
    assert [c["id"] for c in rest["items"]] == ids[2:] and rest["next"] is None
    held = ask(api, box.token, "{ entitlements { package validUntil } }").json()["data"]
    assert held == {"entitlements": [{"package": name, "validUntil": None}]}


def test_another_households_entitlements_are_not_seen(
        api: str, services: Services, box: Box) -> None:
    neighbour = household(services, scopes=("playback", "account"))
    with services.db.session() as session:
        packages.create_package(session, "theirs")
        entitlements.grant(session, neighbour.account_id, "theirs")
    assert ask(api, box.token, "{ entitlements { package } }").json() == {
        "data": {"entitlements": []}}


@pytest.mark.parametrize(("query", "says"), [
    ("{ channels(first: 1) { items { guide(hours: 49) { title } } } }",
     "hours: from 1 to 48"),
    ("{ channels(first: 1) { items { guide(hours: 0) { title } } } }",
     "hours: from 1 to 48"),
    ('{ channels(first: 1) { items { guide(from: "2026-12-07T18:00:00") { title } } } }',
     "offset"),
    ("{ channels(first: 101) { next } }", "first: from 1 to 100"),
    ("{ channels(first: 0) { next } }", "first: from 1 to 100"),
    ('{ channels(after: "x\' OR 1=1") { next } }', "after: the `next`"),
    ('{ channels(after: "' + "a" * 32 + '") { next } }', "no such channel"),
])
def test_bad_arguments_get_an_error_that_says_what_is_allowed(
        api: str, services: Services, box: Box, query: str, says: str) -> None:
    channels_with_guide(services, 1)
    answer = ask(api, box.token, query)
    assert answer.status_code == 200, answer.text
    errors = answer.json()["errors"]
    assert says in errors[0]["message"], errors


def _nested(depth: int) -> str:
    return "{ channels { items { " + "now { title } " + "} next } }" if depth < 0 else (
        "{ __typename " + "".join("channels { items { " for _ in range(depth))
        + "id" + " } }" * depth + " }")


@pytest.mark.parametrize(("query", "says"), [
    # deeper than the depth limit (channels have no channels, so it also fails validation:
    # the limiter answers first, before the schema is walked)
    ("{ a" + " { a" * 12 + " }" * 13, "exceeds maximum operation depth"),
    ("{ " + " ".join(f"a{n}: __typename" for n in range(21)) + " }", "aliases"),
    ("{ " + "__typename " * 2100 + "}", "token"),
    ("{ channels(first: 100) { items { guide(hours: 48) { title } } next } }",
     "query too costly"),
    ("{ channels { ", "Syntax Error"),
    ('mutation { channels { next } }', "mutation"),
    ("subscription { channels { next } }", "subscription"),
    ("{ __schema { types { name } } }", "introspection"),
])
def test_a_query_past_a_limit_is_refused_before_it_runs(
        api: str, box: Box, query: str, says: str) -> None:
    answer = ask(api, box.token, query)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    if "error" in body:  # refused at the door: not a query
        messages = [body["error"]["message"]]
    else:
        assert body["data"] is None
        messages = [e["message"] for e in body["errors"]]
    assert says.lower() in " ".join(messages).lower(), body


def test_introspection_is_a_setting(services: Services, box: Box) -> None:
    services.settings = services.settings.with_(graphql_introspection=True)
    with run_server(create_app(services)) as api:
        answer = ask(api, box.token, "{ __schema { queryType { name } } }")
    assert answer.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"query": 5}', 400, "query: expected a string"),
    (b'{"variables": {}}', 400, "query"),
    (b'{"query": "{ __typename }", "variables": [1]}', 400, "variables"),
    (b'{"query": "{ __typename }", "mutation": "x"}', 400, "operationName"),
    (b'{"query": "' + b"a" * 70_000 + b'"}', 413, "bytes"),
])
def test_a_bad_body_is_refused_with_a_clear_error(
        api: str, box: Box, body: bytes, status: int, says: str) -> None:
    answer = httpx.post(api + "/graphql", content=body, headers={
        **box.auth(), "Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]


def test_tokens_are_checked_as_everywhere(api: str, box: Box, services: Services) -> None:
    query = "{ __typename }"
    assert ask(api, None, query).status_code == 401
    assert ask(api, box.token[:-3] + "abc", query).status_code == 401
    expired = services.signer.issue(["playback"], subject=box.user_id, device_id=box.device_id,
                                    ttl_s=-120)
    assert ask(api, expired, query).json()["error"]["code"] == "invalid_token"
    assert ask(api, box.token, query).json() == {"data": {"__typename": "Query"}}
    revoke(services, box.device_id)
    refused = ask(api, box.token, query)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]


def test_the_continue_watching_row_is_the_profile_s(
        api: str, services: Services, box: Box) -> None:
    name = f"pkg-{secrets.token_hex(3)}"
    asset_id = add_asset(services.db)
    with services.db.session() as session:
        packages.create_package(session, name)
        packages.add_asset(session, name, asset_id)
        entitlements.grant(session, box.account_id, name)
    reported = httpx.post(api + "/v1/activity", headers=box.auth(), json={
        "asset": asset_id, "position": 42.5, "kind": "progress",
        "at": utcnow().isoformat(), "profile": "kid"})
    assert reported.status_code < 300, reported.text
    query = "query($p: String!) { continueWatching(profile: $p) { asset title position } }"
    row = ask(api, box.token, query, p="kid").json()["data"]["continueWatching"]
    assert row == [{"asset": asset_id, "title": "master", "position": 42.5}]
    assert ask(api, box.token, query, p="grown-up").json()["data"]["continueWatching"] == []
    refused = ask(api, box.token, query, p="../x").json()
    assert "profile:" in refused["errors"][0]["message"]
