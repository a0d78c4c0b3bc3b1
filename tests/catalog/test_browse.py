"""catalog.browse on SQLite and PostgreSQL: the visibility rules in SQL, and the
device's filter applied to what they let through."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from stb_origin.accounts import entitlements, packages, users
from stb_origin.catalog import browse, titles
from stb_origin.catalog.browse import Criteria, Viewer
from stb_origin.catalog.titles import TitleFields
from stb_origin.db import Database
from stb_origin.db.types import utcnow
from stb_origin.origin.masters import Filter
from tests.catalog.conftest import HEVC_ONLY, add_asset

AVC = Filter.for_device(1920, 1080, ["avc1", "mp4a"])


def _title(db: Database, **values: object) -> str:
    with db.session() as session:
        return titles.create_title(session, TitleFields(given=set(values),
                                                        **values)).id  # type: ignore[arg-type]


def _playable(db: Database, title: str, renditions: list[dict[str, object]] | None = None,
              account: str | None = None, until: datetime | None = None) -> str:
    """A ready main asset for the title, in a package granted to ``account``."""
    asset = add_asset(db, renditions=renditions)
    name = f"p{secrets.token_hex(4)}"
    with db.session() as session:
        titles.link_asset(session, title, asset, "main")
        packages.create_package(session, name)
        packages.add_asset(session, name, asset)
        if account is not None:
            entitlements.grant(session, account, name, utcnow() - timedelta(hours=1), until)
    return asset


def _account(db: Database) -> str:
    with db.session() as session:
        return users.create_user(session, f"{secrets.token_hex(4)}@example.com").account_id


def _names(db: Database, viewer: Viewer, criteria: Criteria | None = None) -> list[str]:
    with db.session() as session:
        found, _ = browse.page(session, viewer, criteria or Criteria(), 50, None)
        return sorted(t.name for t in found)


def test_visibility_on_both_engines(engines: Database) -> None:
    account, other = _account(engines), _account(engines)
    now = utcnow()
    movie = _title(engines, kind="movie", name="Movie", rating=("MPAA", 13))
    _playable(engines, movie, account=account)
    ended = _title(engines, kind="movie", name="Ended")
    _playable(engines, ended, account=account, until=now - timedelta(minutes=1))
    closed = _title(engines, kind="movie", name="Closed", available_until=now)
    _playable(engines, closed, account=account)
    uhd = _title(engines, kind="movie", name="UHD", available_from=now - timedelta(days=1))
    _playable(engines, uhd, HEVC_ONLY, account=account)
    series = _title(engines, kind="series", name="Series")
    episode = _title(engines, kind="episode", name="Episode", series=series, season=1,
                     episode=1)
    _playable(engines, episode, account=account)
    _title(engines, kind="episode", name="Bare", series=series, season=1, episode=2)

    box = Viewer(account_id=account, device=AVC, at=utcnow())
    assert _names(engines, box) == ["Episode", "Movie", "Series"]
    assert _names(engines, Viewer(account, None, utcnow())) == [
        "Episode", "Movie", "Series", "UHD"]
    assert _names(engines, Viewer(other, AVC, utcnow())) == []
    # No account: every available title with a ready main asset.
    assert _names(engines, Viewer(None, None, utcnow())) == [
        "Ended", "Episode", "Movie", "Series", "UHD"]
    assert _names(engines, box, Criteria(max_age=12)) == ["Episode", "Series"]
    assert _names(engines, box, Criteria(search="OVI")) == ["Movie"]
    assert _names(engines, box, Criteria(series=series)) == ["Episode"]
    assert _names(engines, box, Criteria(kind="series")) == ["Series"]
    with engines.session() as session:
        assert browse.one(session, box, uhd) is None
        found = browse.one(session, box, movie)
        assert found is not None and found[0].name == "Movie"
