"""Titles, their genres and asset links: the content team's changes, checked.

Every change that a box could see moves the title's ``revision`` on and sets
``updated_at`` (``touch``); a change to an episode touches its series too, as
what a series shows (whether it shows at all) follows its episodes.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.assets import records
from stb_origin.catalog.models import (
    MAX_DESCRIPTION,
    MAX_GENRE_NAME,
    MAX_NAME,
    Genre,
    Kind,
    Role,
    Title,
    TitleAsset,
    TitleGenre,
)
from stb_origin.db import changes
from stb_origin.db.paging import newest_first
from stb_origin.db.types import utcnow

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SCHEME = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")
MAX_AGE_LIMIT = 21
MAX_SEASON = 9999
MAX_EPISODE = 99999
MAX_GENRES = 20
MAX_SEARCH = 200
# Control characters have no business in a name; they would also reach logs and UIs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Fields PATCH may set to null, and what that means: no rating, an open window.
NULLABLE = ("rating", "available_from", "available_until")


@dataclass
class TitleFields:
    """What a body sets: only the names in ``given`` were sent."""

    given: set[str] = field(default_factory=set)
    kind: str | None = None
    name: str | None = None
    description: str | None = None
    series: str | None = None
    season: int | None = None
    episode: int | None = None
    rating: tuple[str, int] | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    genres: list[str] | None = None


def check_name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_NAME or _CONTROL.search(value):
        raise InvalidValue(f"name: 1 to {MAX_NAME} characters, no control characters")
    return value


def check_description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION or _CONTROL.search(value.replace("\n", "")):
        raise InvalidValue(f"description: at most {MAX_DESCRIPTION} characters; no control"
                           " characters but line breaks")
    return value


def check_rating(value: object) -> tuple[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"scheme", "age_limit"}:
        raise InvalidValue('rating: an object {"scheme": "MPAA", "age_limit": 13}, or null')
    scheme, age = value["scheme"], value["age_limit"]
    if not isinstance(scheme, str) or not SCHEME.fullmatch(scheme):
        raise InvalidValue("rating.scheme: 1 to 16 upper-case letters, digits or -, e.g. FSK")
    return scheme, check_int("rating.age_limit", age, 0, MAX_AGE_LIMIT)


def check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(f"{name}: an integer from {low} to {high}")
    return value


def check_genre_list(value: object) -> list[str]:
    if (not isinstance(value, list) or len(value) > MAX_GENRES
            or not all(isinstance(g, str) and SLUG.fullmatch(g) for g in value)):
        raise InvalidValue(f"genres: a list of up to {MAX_GENRES} genre slugs")
    return sorted(set(value))


def check_slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise InvalidValue("slug: 1 to 64 lower-case letters, digits, _ or - (starting with a"
                           " letter or digit)")
    return value


# --- titles -------------------------------------------------------------------------

def get_title(session: Session, title_id: str) -> Title:
    title = session.get(Title, title_id)
    if title is None:
        raise NotFound("no such title")
    return title


def create_title(session: Session, fields: TitleFields) -> Title:
    if fields.kind is None or fields.name is None:
        raise InvalidValue("kind and name are required")
    title = Title(kind=fields.kind, name=fields.name, description=fields.description or "")
    _apply(session, title, fields)
    session.add(title)
    _flush(session)
    _set_genres(session, title, fields.genres or [])
    changes.record(session, changes.TITLE, [title.id])
    if title.series_id is not None:
        touch(session, get_title(session, title.series_id))
    return title


def update_title(session: Session, title_id: str, fields: TitleFields) -> Title:
    title = get_title(session, title_id)
    if fields.kind is not None and fields.kind != title.kind:
        raise InvalidValue("kind: a title's kind cannot change; make a new title")
    series_before = title.series_id
    if fields.name is not None:
        title.name = fields.name
    if fields.description is not None:
        title.description = fields.description
    _apply(session, title, fields)
    if fields.genres is not None:
        _set_genres(session, title, fields.genres)
    touch(session, title)
    _flush(session)
    # What a series shows follows its episodes: the one it left and the one it joined.
    for series_id in {s for s in (series_before, title.series_id) if s is not None}:
        touch(session, get_title(session, series_id))
    return title


def delete_title(session: Session, title_id: str) -> None:
    title = get_title(session, title_id)
    if title.series_id is not None:
        touch(session, get_title(session, title.series_id))
    episodes = session.scalars(select(Title.id).where(Title.series_id == title_id))
    changes.record(session, changes.TITLE, [title_id, *episodes])
    # Episodes, genre and asset links and artwork rows go with it (ON DELETE CASCADE).
    session.delete(title)
    session.flush()


def touch(session: Session, title: Title) -> None:
    """The title changed in a way a box could see: a new revision, and boxes' copies
    follow (``db.changes``)."""
    title.revision = (title.revision or 0) + 1
    title.updated_at = utcnow()
    changes.record(session, changes.TITLE, [title.id])


def _apply(session: Session, title: Title, fields: TitleFields) -> None:
    """The fields whose rules depend on each other, checked on the result."""
    given = fields.given
    if "series" in given:
        title.series_id = fields.series
    if "season" in given:
        title.season_number = fields.season
    if "episode" in given:
        title.episode_number = fields.episode
    if "rating" in given:
        title.rating_scheme, title.age_limit = fields.rating or (None, None)
    if "available_from" in given:
        title.available_from = fields.available_from
    if "available_until" in given:
        title.available_until = fields.available_until
    _check_episode(session, title)
    start, end = title.available_from, title.available_until
    if start is not None and end is not None and end.astimezone(UTC) <= start.astimezone(UTC):
        raise InvalidValue("available_until: must be after available_from")


def _check_episode(session: Session, title: Title) -> None:
    numbers = (title.series_id, title.season_number, title.episode_number)
    if title.kind != Kind.EPISODE:
        if numbers != (None, None, None):
            raise InvalidValue("series, season and episode: only for an episode")
        return
    if None in numbers:
        raise InvalidValue("an episode needs series, season and episode")
    series = session.get(Title, title.series_id)
    if series is None:
        raise NotFound("series: no such title")
    if series.kind != Kind.SERIES:
        raise InvalidValue("series: that title is not a series")
    clash = session.scalar(select(Title.id).where(
        Title.series_id == title.series_id, Title.season_number == title.season_number,
        Title.episode_number == title.episode_number, Title.id != title.id))
    if clash is not None:
        raise AlreadyExists("this series has an episode with this season and number")


def _set_genres(session: Session, title: Title, slugs: Collection[str]) -> None:
    unknown = unknown_genres(session, slugs)
    if unknown:
        raise InvalidValue(f"genres: no such genre {', '.join(repr(s) for s in unknown)}")
    session.execute(delete(TitleGenre).where(TitleGenre.title_id == title.id))
    session.add_all(TitleGenre(title_id=title.id, genre_slug=s) for s in sorted(set(slugs)))
    session.flush()


def page_titles(session: Session, limit: int, after: str | None, kind: str | None = None,
                series: str | None = None, search: str | None = None) -> list[Title]:
    query = filtered(select(Title), kind, series, search)
    return newest_first(session, Title, query, limit, after)


def filtered(query: Any, kind: str | None, series: str | None, search: str | None) -> Any:
    if kind is not None:
        query = query.where(Title.kind == kind)
    if series is not None:
        query = query.where(Title.series_id == series)
    if search:
        query = query.where(name_contains(search))
    return query


def name_contains(text: str) -> Any:
    """Case-insensitive substring: ``%`` and ``_`` in ``text`` are themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(Title.name).like(f"%{escaped}%", escape="\\")


# --- genres ---------------------------------------------------------------------------

def unknown_genres(session: Session, slugs: Collection[str]) -> list[str]:
    if not slugs:
        return []
    known = set(session.scalars(select(Genre.slug).where(Genre.slug.in_(list(slugs)))))
    return sorted(set(slugs) - known)


def put_genre(session: Session, slug: str, name: str) -> tuple[Genre, bool]:
    """Create or rename; True when it is new. Renaming touches its titles."""
    check_slug(slug)
    name = name.strip()
    if not 1 <= len(name) <= MAX_GENRE_NAME or _CONTROL.search(name):
        raise InvalidValue(f"name: 1 to {MAX_GENRE_NAME} characters, no control characters")
    genre = session.get(Genre, slug)
    if genre is None:
        genre = Genre(slug=slug, name=name)
        session.add(genre)
        _flush(session)
        return genre, True
    if genre.name != name:
        genre.name, genre.updated_at = name, utcnow()
        for title in session.scalars(select(Title).join(TitleGenre).where(
                TitleGenre.genre_slug == slug)):
            touch(session, title)
    session.flush()
    return genre, False


def delete_genre(session: Session, slug: str) -> None:
    genre = session.get(Genre, slug)
    if genre is None:
        raise NotFound("no such genre")
    used = session.scalar(select(func.count()).select_from(TitleGenre)
                          .where(TitleGenre.genre_slug == slug))
    if used:
        raise AlreadyExists(f"{used} title(s) have this genre; take it off them first")
    session.delete(genre)
    session.flush()


def page_genres(session: Session, limit: int, after: str | None) -> list[Genre]:
    query = select(Genre).order_by(Genre.slug)
    if after is not None:
        query = query.where(Genre.slug > after)
    return list(session.scalars(query.limit(limit)))


# --- asset links ----------------------------------------------------------------------

def link_asset(session: Session, title_id: str, asset_id: str, role: str) -> bool:
    """Link (or change the role of) an asset; True when the link is new."""
    title = get_title(session, title_id)
    if role not in set(Role):
        raise InvalidValue(f"role: one of {', '.join(Role)}")
    if role == Role.MAIN and title.kind == Kind.SERIES:
        raise InvalidValue("role: a series plays through its episodes; it takes trailers only")
    if records.get(session, asset_id) is None:
        raise NotFound("no such asset")
    link = session.get(TitleAsset, (title_id, asset_id))
    created = link is None
    if link is None:
        session.add(TitleAsset(title_id=title_id, asset_id=asset_id, role=role))
    else:
        link.role = role
    _touch_with_series(session, title)
    _flush(session)
    return created


def unlink_asset(session: Session, title_id: str, asset_id: str) -> None:
    title = get_title(session, title_id)
    result = session.execute(delete(TitleAsset).where(
        TitleAsset.title_id == title_id, TitleAsset.asset_id == asset_id))
    if getattr(result, "rowcount", 0) != 1:
        raise NotFound("this asset is not linked to this title")
    _touch_with_series(session, title)
    session.flush()


def _touch_with_series(session: Session, title: Title) -> None:
    touch(session, title)
    if title.series_id is not None:
        touch(session, get_title(session, title.series_id))


def assets_of(session: Session, title_ids: Collection[str]) -> dict[str, list[TitleAsset]]:
    found: dict[str, list[TitleAsset]] = {t: [] for t in title_ids}
    if title_ids:
        for link in session.scalars(select(TitleAsset).where(
                TitleAsset.title_id.in_(list(title_ids)))
                .order_by(TitleAsset.role, TitleAsset.asset_id)):
            found[link.title_id].append(link)
    return found


def titles_playing(session: Session, asset_id: str) -> list[str]:
    """The titles linking the asset, and their series."""
    linked = list(session.scalars(select(TitleAsset.title_id)
                                  .where(TitleAsset.asset_id == asset_id)))
    series = session.scalars(select(Title.series_id).where(Title.id.in_(linked),
                                                           Title.series_id.is_not(None)))
    return list(dict.fromkeys([*linked, *(s for s in series if s is not None)]))


def genres_of(session: Session, title_ids: Collection[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {t: [] for t in title_ids}
    if title_ids:
        for link in session.scalars(select(TitleGenre).where(
                TitleGenre.title_id.in_(list(title_ids))).order_by(TitleGenre.genre_slug)):
            found[link.title_id].append(link.genre_slug)
    return found


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request took the same key after our check.
        raise AlreadyExists("it was just created by another request") from None
