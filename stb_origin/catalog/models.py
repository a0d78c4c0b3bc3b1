"""The catalog's tables: what boxes browse.

A **title** is a movie, a series or an episode (``kind``). An episode belongs to
a series and carries its season and episode numbers; a season is just the pair
(series, season_number): it has nothing of its own yet (no name, no artwork), so
a table for it would be one more thing to keep in step and nothing to show.
Deleting a series deletes its episodes (the foreign key cascades).

A title plays through its **assets** (``title_assets``, each with a ``role``:
``main`` is what plays, ``trailer`` a preview). Entitlement is not stored here:
a title is open to an account when some package holding one of its ``main``
assets is granted to the account now (``accounts.entitlements``); a series is
open when one of its episodes is.

**Genres** are a fixed list the content team keeps (``genres``), joined to
titles many-to-many. A **rating** is a scheme's name (MPAA, FSK, BBFC, ...) and
the age limit it means, in years. The **availability window** is half-open,
[available_from, available_until), either end open when null.

**Artwork** is one image per title and kind (poster, backdrop, ...), stored in
a few widths under content-addressed names (``catalog.artwork``).

``revision`` counts every change a box could see (the title's fields, its
genres, assets and artwork) and ``updated_at`` says when the last was: a reader
that keeps a copy (GraphQL, sync, events) compares them instead of the rows.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stb_origin.assets.records import Asset
from stb_origin.db import Base
from stb_origin.db.types import UtcDateTime, iso, new_id, utcnow

MAX_NAME = 500
MAX_DESCRIPTION = 5000
MAX_GENRE_NAME = 100


class Kind(enum.StrEnum):
    MOVIE = "movie"
    SERIES = "series"
    EPISODE = "episode"


class Role(enum.StrEnum):
    MAIN = "main"  # what plays: decides entitlement and playability
    TRAILER = "trailer"


class ArtworkKind(enum.StrEnum):
    POSTER = "poster"
    BACKDROP = "backdrop"
    LOGO = "logo"
    THUMBNAIL = "thumbnail"


class Title(Base):
    __tablename__ = "titles"
    __table_args__ = (
        # One episode per number in a season.
        UniqueConstraint("series_id", "season_number", "episode_number",
                         name="uq_titles_episode"),
        Index("ix_titles_created", "created_at", "id"),
        Index("ix_titles_kind", "kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    description: Mapped[str] = mapped_column(Text, default="")
    series_id: Mapped[str | None] = mapped_column(
        ForeignKey("titles.id", ondelete="CASCADE"), nullable=True, index=True)
    season_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    episode_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rating_scheme: Mapped[str | None] = mapped_column(String(16), nullable=True)
    age_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    available_from: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    available_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def available_at(self, at: datetime) -> bool:
        return ((self.available_from is None or self.available_from <= at)
                and (self.available_until is None or at < self.available_until))


class Genre(Base):
    __tablename__ = "genres"

    # The slug is the genre's identity in URLs, filters and title bodies.
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_GENRE_NAME))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


class TitleGenre(Base):
    __tablename__ = "title_genres"

    title_id: Mapped[str] = mapped_column(ForeignKey(Title.id, ondelete="CASCADE"),
                                          primary_key=True)
    # A genre in use cannot be deleted (no cascade): the catalog would change silently.
    genre_slug: Mapped[str] = mapped_column(ForeignKey(Genre.slug), primary_key=True,
                                            index=True)


class TitleAsset(Base):
    __tablename__ = "title_assets"

    title_id: Mapped[str] = mapped_column(ForeignKey(Title.id, ondelete="CASCADE"),
                                          primary_key=True)
    # Deleting an asset takes it off every title.
    asset_id: Mapped[str] = mapped_column(ForeignKey(Asset.id, ondelete="CASCADE"),
                                          primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Artwork(Base):
    __tablename__ = "artwork"

    title_id: Mapped[str] = mapped_column(ForeignKey(Title.id, ondelete="CASCADE"),
                                          primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The first 32 hex digits of the upload's SHA-256: part of every stored name, so a
    # new image is a new URL and the old ones can be cached for ever.
    digest: Mapped[str] = mapped_column(String(32))
    # "jpg" or "png": the sizes keep the upload's format (a logo keeps its alpha).
    format: Mapped[str] = mapped_column(String(8))
    # [{"width": 1920, "height": 1080}, ...], widest first.
    sizes: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
