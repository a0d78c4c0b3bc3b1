"""GET /v1/titles over real HTTP: what a box sees follows its entitlements, the
windows, the assets' state and what it can play; answers revalidate with ETags."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.models import Entitlement
from stb_origin.assets.records import Status
from stb_origin.catalog import titles
from stb_origin.catalog.titles import TitleFields
from stb_origin.db.types import new_id, utcnow
from stb_origin.services import Services
from tests.catalog.conftest import HEVC_ONLY, add_asset, call
from tests.catalog.test_routes import forged_tokens
from tests.drm.support import Box, entitle, household, revoke

AVC_BOX = Capabilities(max_width=1920, max_height=1080, codecs=("avc1.640028", "mp4a.40.2"))
UHD_BOX = Capabilities(codecs=("avc1", "hvc1", "mp4a"), video_ranges=("PQ",))


def _title(services: Services, **values: object) -> str:
    with services.db.session() as session:
        return titles.create_title(session, TitleFields(given=set(values),
                                                        **values)).id  # type: ignore[arg-type]


def _link(services: Services, title_id: str, asset_id: str, role: str = "main") -> None:
    with services.db.session() as session:
        titles.link_asset(session, title_id, asset_id, role)


def _movie(services: Services, name: str = "Film", **values: object) -> tuple[str, str]:
    """A movie with one ready asset of its own: (title, asset)."""
    title = _title(services, kind="movie", name=name, **values)
    asset = add_asset(services.db)
    _link(services, title, asset)
    return title, asset


def _names(api: str, box: Box, query: str = "") -> list[str]:
    response = call(api, "GET", f"/v1/titles{query}", box.token)
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()["items"]]


def test_a_box_sees_what_its_account_is_entitled_to_and_loses_it_when_that_ends(
        api: str, services: Services) -> None:
    title, asset = _movie(services, "Entitled")
    _movie(services, "Someone else's")
    box = household(services, AVC_BOX)
    assert _names(api, box) == []
    assert call(api, "GET", f"/v1/titles/{title}", box.token).status_code == 404
    entitle(services, box.account_id, asset)
    assert _names(api, box) == ["Entitled"]
    detail = call(api, "GET", f"/v1/titles/{title}", box.token)
    assert detail.status_code == 200
    assert detail.json()["assets"] == [{"id": asset, "role": "main"}]
    # Another household with its own box sees nothing of it.
    assert _names(api, household(services, AVC_BOX)) == []
    with services.db.session() as session:
        session.execute(update(Entitlement).where(Entitlement.account_id == box.account_id)
                        .values(valid_until=utcnow() - timedelta(seconds=1)))
    assert _names(api, box) == []
    assert call(api, "GET", f"/v1/titles/{title}", box.token).status_code == 404


def test_an_entitlement_not_yet_begun_shows_nothing(api: str, services: Services) -> None:
    _, asset = _movie(services)
    box = household(services, AVC_BOX)
    entitle(services, box.account_id, asset, valid_from=utcnow() + timedelta(days=1))
    assert _names(api, box) == []


def test_the_window_opens_and_closes(api: str, services: Services, editor: str) -> None:
    now = utcnow()
    future, asset_a = _movie(services, "Future", available_from=now + timedelta(days=1))
    current, asset_b = _movie(services, "Current", available_from=now - timedelta(days=1),
                              available_until=now + timedelta(days=1))
    box = household(services, AVC_BOX)
    for asset in (asset_a, asset_b):
        entitle(services, box.account_id, asset)
    assert _names(api, box) == ["Current"]
    closed = call(api, "PATCH", f"/v1/catalog/titles/{current}", editor,
                  json={"available_until": (now - timedelta(seconds=1)).isoformat()})
    assert closed.status_code == 200, closed.text
    opened = call(api, "PATCH", f"/v1/catalog/titles/{future}", editor,
                  json={"available_from": None})
    assert opened.status_code == 200
    assert _names(api, box) == ["Future"]


def test_only_ready_assets_the_box_can_decode_make_a_title_show(
        api: str, services: Services) -> None:
    processing = _title(services, kind="movie", name="Processing")
    uhd = _title(services, kind="movie", name="UHD only")
    both = _title(services, kind="movie", name="Both")
    assets = {"processing": add_asset(services.db, Status.PROCESSING),
              "hevc": add_asset(services.db, renditions=HEVC_ONLY),
              "avc": add_asset(services.db)}
    _link(services, processing, assets["processing"])
    _link(services, uhd, assets["hevc"])
    _link(services, both, assets["hevc"])
    _link(services, both, assets["avc"])
    avc_box, uhd_box = household(services, AVC_BOX), household(services, UHD_BOX)
    for box in (avc_box, uhd_box):
        for asset in assets.values():
            entitle(services, box.account_id, asset)
    assert sorted(_names(api, avc_box)) == ["Both"]
    assert sorted(_names(api, uhd_box)) == ["Both", "UHD only"]
    # The detail lists what this box plays, and only that.
    detail = call(api, "GET", f"/v1/titles/{both}", avc_box.token).json()
    assert detail["assets"] == [{"id": assets["avc"], "role": "main"}]


def test_a_series_shows_when_an_episode_is_open_and_lists_episodes_in_order(
        api: str, services: Services) -> None:
    series = _title(services, kind="series", name="Coast")
    trailer = add_asset(services.db)
    _link(services, series, trailer, "trailer")
    box = household(services, AVC_BOX)
    entitle(services, box.account_id, trailer)
    # A trailer alone does not make a series show.
    assert _names(api, box) == []
    for season, episode in ((2, 1), (1, 2), (1, 1), (1, 10)):
        episode_id = _title(services, kind="episode", name=f"S{season}E{episode}",
                            series=series, season=season, episode=episode)
        asset = add_asset(services.db)
        _link(services, episode_id, asset)
        entitle(services, box.account_id, asset)
    _title(services, kind="episode", name="Unentitled", series=series, season=3, episode=1)
    assert sorted(_names(api, box)) == ["Coast", "S1E1", "S1E10", "S1E2", "S2E1"]
    assert _names(api, box, "?kind=series") == ["Coast"]
    seen: list[str] = []
    path: str | None = f"/v1/titles?series={series}&limit=3"
    while path is not None:
        page = call(api, "GET", path, box.token).json()
        seen += [t["name"] for t in page["items"]]
        path = page["next"]
    assert seen == ["S1E1", "S1E2", "S1E10", "S2E1"]
    detail = call(api, "GET", f"/v1/titles/{series}", box.token).json()
    assert detail["assets"] == []  # a series plays through its episodes


def test_an_episode_hides_while_its_series_is_closed(api: str, services: Services,
                                                     editor: str) -> None:
    series = _title(services, kind="series", name="Later",
                    available_from=utcnow() + timedelta(days=7))
    episode = _title(services, kind="episode", name="Early", series=series, season=1,
                     episode=1)
    asset = add_asset(services.db)
    _link(services, episode, asset)
    box = household(services, AVC_BOX)
    entitle(services, box.account_id, asset)
    assert _names(api, box) == []
    call(api, "PATCH", f"/v1/catalog/titles/{series}", editor, json={"available_from": None})
    assert sorted(_names(api, box)) == ["Early", "Later"]


def test_filters_age_genre_kind_and_search(api: str, services: Services) -> None:
    with services.db.session() as session:
        titles.put_genre(session, "kids", "Kids")
    specs = [("Cartoon 100%", ("MPAA", 0), ["kids"]), ("Thriller_1", ("FSK", 16), []),
             ("Unrated", None, [])]
    box = household(services, AVC_BOX)
    for name, rating, genres in specs:
        _, asset = _movie(services, name, rating=rating, genres=genres)
        entitle(services, box.account_id, asset)
    assert sorted(_names(api, box, "?max_age=12")) == ["Cartoon 100%", "Unrated"]
    assert sorted(_names(api, box, "?max_age=16")) == ["Cartoon 100%", "Thriller_1", "Unrated"]
    assert _names(api, box, "?genre=kids") == ["Cartoon 100%"]
    assert _names(api, box, "?q=%25") == ["Cartoon 100%"]
    assert _names(api, box, "?q=R_") == ["Thriller_1"]
    assert _names(api, box, "?q=rated") == ["Unrated"]
    assert _names(api, box, "?kind=episode") == []


@pytest.mark.parametrize("query", [
    "?max_age=-1", "?max_age=22", "?max_age=1e1", "?max_age=999999999999999999999",
    "?kind=film", "?genre=../x", "?series=abc", "?q=" + "x" * 201, "?q=%00",
    "?limit=0", "?limit=101", "?after=zz", f"?after={'a' * 32}",
])
def test_bad_queries_are_400(api: str, services: Services, query: str) -> None:
    box = household(services, AVC_BOX)
    response = call(api, "GET", f"/v1/titles{query}", box.token)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"


def test_pages_fill_past_hidden_titles(api: str, services: Services) -> None:
    box = household(services, AVC_BOX)
    shown = []
    for number in range(9):
        _, asset = _movie(services, f"T{number}")
        if number % 3 != 1:
            entitle(services, box.account_id, asset)
            shown.append(f"T{number}")
    seen: list[str] = []
    path: str | None = "/v1/titles?limit=2"
    pages = 0
    while path is not None:
        page = call(api, "GET", path, box.token).json()
        assert 1 <= len(page["items"]) <= 2
        seen += [t["name"] for t in page["items"]]
        path = page["next"]
        pages += 1
    assert seen == list(reversed(shown))  # newest first
    assert pages == 3


def test_answers_revalidate_with_their_etag(api: str, services: Services,
                                            editor: str) -> None:
    title, asset = _movie(services, "Cached")
    box = household(services, AVC_BOX)
    entitle(services, box.account_id, asset)
    for path in ("/v1/titles", f"/v1/titles/{title}"):
        first = call(api, "GET", path, box.token)
        assert first.headers["cache-control"] == "private, max-age=30"
        assert first.headers["vary"] == "Authorization"
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = call(api, "GET", path, box.token, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
        other = call(api, "GET", path, box.token, headers={"If-None-Match": '"other"'})
        assert other.status_code == 200 and other.content == first.content
    etag = call(api, "GET", f"/v1/titles/{title}", box.token).headers["etag"]
    call(api, "PATCH", f"/v1/catalog/titles/{title}", editor, json={"name": "Renamed"})
    changed = call(api, "GET", f"/v1/titles/{title}", box.token,
                   headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed"


def test_who_may_browse(api: str, services: Services) -> None:
    title, asset = _movie(services)
    for path in ("/v1/titles", f"/v1/titles/{title}"):
        expired = services.signer.issue(["playback"], ttl_s=-120)
        for token in (None, expired, *forged_tokens(services, ["playback"])):
            assert call(api, "GET", path, token).status_code == 401
        wrong_scope = services.signer.issue(["assets:read", "account"])
        assert call(api, "GET", path, wrong_scope).status_code == 403
        # A user's playback token without a device: not a box.
        box = household(services, AVC_BOX)
        deviceless = services.signer.issue(["playback"], subject=box.user_id)
        refused = call(api, "GET", path, deviceless)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "no_device")
        # A box revoked since its token was issued is nobody.
        revoked = household(services, AVC_BOX)
        revoke(services, revoked.device_id)
        assert call(api, "GET", path, revoked.token).status_code == 401
        # The operator sees every available title with a ready asset.
        assert call(api, "GET", path, services.signer.issue(["playback"])).status_code == 200
    assert call(api, "GET", f"/v1/titles/{new_id()}",
                services.signer.issue(["playback"])).status_code == 404
