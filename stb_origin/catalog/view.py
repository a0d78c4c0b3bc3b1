"""Titles as JSON: the content team's full view, and the view a box gets."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stb_origin.catalog.artwork import artwork_urls
from stb_origin.catalog.models import Artwork, Kind, Title
from stb_origin.catalog.titles import assets_of, genres_of
from stb_origin.db.types import iso

Json = dict[str, Any]


def _common(title: Title, genres: list[str], artwork: Json) -> Json:
    return {
        "id": title.id,
        "kind": title.kind,
        "name": title.name,
        "description": title.description,
        "series": title.series_id,
        "season": title.season_number,
        "episode": title.episode_number,
        "genres": genres,
        "rating": ({"scheme": title.rating_scheme, "age_limit": title.age_limit}
                   if title.rating_scheme is not None else None),
        "available_from": iso(title.available_from),
        "available_until": iso(title.available_until),
        "artwork": artwork,
        "revision": title.revision,
        "created_at": iso(title.created_at),
        "updated_at": iso(title.updated_at),
    }


def artwork_of(session: Session, title_ids: Collection[str], base_url: str) -> dict[str, Json]:
    found: dict[str, Json] = {t: {} for t in title_ids}
    if title_ids:
        for art in session.scalars(select(Artwork).where(Artwork.title_id.in_(list(title_ids)))
                                   .order_by(Artwork.kind)):
            found[art.title_id][art.kind] = artwork_urls(art, base_url)
    return found


def editor_json(session: Session, titles: list[Title], base_url: str) -> list[Json]:
    """Every field and every asset link, whatever its state."""
    ids = [t.id for t in titles]
    genres, links, art = genres_of(session, ids), assets_of(session, ids), \
        artwork_of(session, ids, base_url)
    return [{**_common(t, genres[t.id], art[t.id]),
             "assets": [{"id": link.asset_id, "role": link.role} for link in links[t.id]]}
            for t in titles]


def box_json(session: Session, titles: list[Title], base_url: str,
             playable: dict[str, list[Json]]) -> list[Json]:
    """What a box sees: ``playable`` holds the assets it may play, by title. A series
    plays through its episodes: it lists none of their assets itself."""
    ids = [t.id for t in titles]
    genres, art = genres_of(session, ids), artwork_of(session, ids, base_url)
    return [{**_common(t, genres[t.id], art[t.id]),
             "assets": [] if t.kind == Kind.SERIES else playable.get(t.id, [])}
            for t in titles]
