"""The catalog's domain functions on SQLite and PostgreSQL: titles, episodes, genres,
asset links and the revision that moves with every change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.assets.records import Asset
from stb_origin.catalog import titles
from stb_origin.catalog.models import Title, TitleAsset, TitleGenre
from stb_origin.catalog.titles import TitleFields
from stb_origin.db import Database
from stb_origin.db.types import new_id
from tests.catalog.conftest import add_asset


def _fields(**values: object) -> TitleFields:
    return TitleFields(given=set(values), **values)  # type: ignore[arg-type]


def _make(db: Database, **values: object) -> str:
    with db.session() as session:
        return titles.create_title(session, _fields(**values)).id


def _series_with_episodes(db: Database) -> tuple[str, list[str]]:
    series = _make(db, kind="series", name="Lighthouse")
    episodes = [_make(db, kind="episode", name=f"S{s}E{e}", series=series, season=s, episode=e)
                for s, e in ((1, 1), (1, 2), (2, 1))]
    return series, episodes


def _revision(db: Database, title_id: str) -> int:
    with db.session() as session:
        return titles.get_title(session, title_id).revision


def test_a_title_is_made_changed_and_its_revision_moves(engines: Database) -> None:
    with engines.session() as session:
        titles.put_genre(session, "drama", "Drama")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    movie = _make(engines, kind="movie", name="The Film", genres=["drama"],
                  rating=("FSK", 12), available_from=start)
    with engines.session() as session:
        title = titles.get_title(session, movie)
        assert (title.kind, title.rating_scheme, title.age_limit, title.revision) == (
            "movie", "FSK", 12, 1)
        assert title.available_from == start and title.available_until is None
        assert titles.genres_of(session, [movie]) == {movie: ["drama"]}
    with engines.session() as session:
        titles.update_title(session, movie, _fields(name="The Film (restored)", rating=None))
    with engines.session() as session:
        title = titles.get_title(session, movie)
        assert (title.name, title.rating_scheme, title.age_limit) == (
            "The Film (restored)", None, None)
        assert title.revision == 2
        assert title.updated_at > title.created_at


def test_an_episode_belongs_to_a_series_and_touches_it(engines: Database) -> None:
    series, episodes = _series_with_episodes(engines)
    before = _revision(engines, series)
    with engines.session() as session:
        titles.update_title(session, episodes[0], _fields(name="Pilot"))
    assert _revision(engines, series) == before + 1
    asset = add_asset(engines)
    with engines.session() as session:
        assert titles.link_asset(session, episodes[1], asset, "main") is True
        assert titles.link_asset(session, episodes[1], asset, "trailer") is False
    assert _revision(engines, series) == before + 3


def test_deleting_a_series_deletes_its_episodes_and_their_links(engines: Database) -> None:
    with engines.session() as session:
        titles.put_genre(session, "crime", "Crime")
    series, episodes = _series_with_episodes(engines)
    asset = add_asset(engines)
    with engines.session() as session:
        titles.link_asset(session, episodes[0], asset, "main")
        titles.update_title(session, episodes[0], _fields(genres=["crime"]))
    with engines.session() as session:
        titles.delete_title(session, series)
    with engines.session() as session:
        assert list(session.scalars(select(Title.id))) == []
        assert list(session.scalars(select(TitleAsset.asset_id))) == []
        assert list(session.scalars(select(TitleGenre.title_id))) == []
        assert session.get(Asset, asset) is not None  # the asset itself stays


def test_deleting_an_asset_takes_it_off_its_titles(engines: Database) -> None:
    movie = _make(engines, kind="movie", name="M")
    asset = add_asset(engines)
    with engines.session() as session:
        titles.link_asset(session, movie, asset, "main")
    with engines.session() as session:
        session.delete(session.get(Asset, asset))
    with engines.session() as session:
        assert titles.assets_of(session, [movie]) == {movie: []}


@pytest.mark.parametrize(("values", "error", "message"), [
    ({"kind": "episode", "name": "E"}, InvalidValue, "needs series, season and episode"),
    ({"kind": "movie", "name": "M", "season": 1}, InvalidValue, "only for an episode"),
    ({"kind": "episode", "name": "E", "series": "0" * 32, "season": 1, "episode": 1},
     NotFound, "series: no such title"),
    ({"kind": "movie", "name": "M", "genres": ["nope"]}, InvalidValue, "no such genre 'nope'"),
    ({"kind": "movie", "name": "M", "available_from": datetime(2026, 2, 1, tzinfo=UTC),
      "available_until": datetime(2026, 1, 1, tzinfo=UTC)}, InvalidValue,
     "available_until: must be after available_from"),
])
def test_refused_titles_name_the_rule(engines: Database, values: dict[str, object],
                                      error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message), engines.session() as session:
        titles.create_title(session, _fields(**values))
    with engines.session() as session:
        assert list(session.scalars(select(Title.id))) == []


def test_an_episode_of_a_movie_or_twice_the_same_number_is_refused(engines: Database) -> None:
    series, _ = _series_with_episodes(engines)
    movie = _make(engines, kind="movie", name="M")
    with pytest.raises(InvalidValue, match="not a series"), engines.session() as session:
        titles.create_title(session, _fields(kind="episode", name="E", series=movie,
                                             season=1, episode=1))
    with pytest.raises(AlreadyExists, match="season and number"), engines.session() as session:
        titles.create_title(session, _fields(kind="episode", name="E", series=series,
                                             season=1, episode=2))


def test_a_kind_cannot_change(engines: Database) -> None:
    movie = _make(engines, kind="movie", name="M")
    with pytest.raises(InvalidValue, match="cannot change"), engines.session() as session:
        titles.update_title(session, movie, _fields(kind="series"))


def test_a_series_takes_trailers_but_no_main_asset(engines: Database) -> None:
    series, _ = _series_with_episodes(engines)
    asset = add_asset(engines)
    with pytest.raises(InvalidValue, match="through its episodes"), \
            engines.session() as session:
        titles.link_asset(session, series, asset, "main")
    with engines.session() as session:
        assert titles.link_asset(session, series, asset, "trailer") is True
    with pytest.raises(NotFound, match="no such asset"), engines.session() as session:
        titles.link_asset(session, series, new_id(), "trailer")
    with pytest.raises(InvalidValue, match="role"), engines.session() as session:
        titles.link_asset(session, series, asset, "bonus")


def test_a_genre_in_use_stays_and_a_rename_touches_its_titles(engines: Database) -> None:
    with engines.session() as session:
        assert titles.put_genre(session, "sci-fi", "SF")[1] is True
    movie = _make(engines, kind="movie", name="M", genres=["sci-fi"])
    with engines.session() as session:
        assert titles.put_genre(session, "sci-fi", "Science fiction")[1] is False
    assert _revision(engines, movie) == 2
    with pytest.raises(AlreadyExists, match="1 title"), engines.session() as session:
        titles.delete_genre(session, "sci-fi")
    with engines.session() as session:
        titles.update_title(session, movie, _fields(genres=[]))
    with engines.session() as session:
        titles.delete_genre(session, "sci-fi")
        assert titles.page_genres(session, 10, None) == []


def test_search_is_a_case_insensitive_substring_and_wildcards_are_literal(
        engines: Database) -> None:
    for name in ("100% Pure", "100 Percent", "snake_case", "snakeXcase", "Back\\slash"):
        _make(engines, kind="movie", name=name)

    def found(text: str) -> list[str]:
        with engines.session() as session:
            return sorted(t.name for t in titles.page_titles(session, 50, None, search=text))

    assert found("0% p") == ["100% Pure"]
    assert found("%") == ["100% Pure"]
    assert found("E_C") == ["snake_case"]
    assert found("_") == ["snake_case"]
    assert found("k\\s") == ["Back\\slash"]
    assert found("100") == ["100 Percent", "100% Pure"]
