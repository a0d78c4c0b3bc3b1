from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stb_origin.accounts import entitlements, packages
from stb_origin.accounts.entitlements import is_entitled
from stb_origin.accounts.errors import AlreadyExists, InvalidValue, NotFound
from stb_origin.accounts.models import Account, PackageAsset
from stb_origin.assets.records import Asset
from stb_origin.db import Database
from stb_origin.db.types import new_id

START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(days=30)


def _asset(db: Database) -> str:
    with db.session() as session:
        asset = Asset(id=new_id(), title="film", source_key="sources/x/source.mp4")
        session.add(asset)
    return asset.id


def _account(db: Database) -> str:
    with db.session() as session:
        account = Account(id=new_id())
        session.add(account)
    return account.id


def _entitled(db: Database, account: str, asset: str, at: datetime) -> bool:
    with db.session() as session:
        return is_entitled(session, account, asset, at)


@pytest.fixture
def premium(db: Database) -> tuple[str, str]:
    """A "premium" package holding one asset; returns (package, asset)."""
    asset = _asset(db)
    with db.session() as session:
        packages.create_package(session, "premium", "Premium tier")
        packages.add_asset(session, "premium", asset)
    return "premium", asset


def test_a_window_is_half_open(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    account = _account(db)
    with db.session() as session:
        entitlements.grant(session, account, package, START, END)
    assert not _entitled(db, account, asset, START - timedelta(seconds=1)), "before"
    assert _entitled(db, account, asset, START), "from the first instant"
    assert _entitled(db, account, asset, START + timedelta(days=3)), "inside"
    assert not _entitled(db, account, asset, END), "valid_until is excluded"
    assert not _entitled(db, account, asset, END + timedelta(days=1)), "after"


def test_an_open_ended_window(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    account = _account(db)
    with db.session() as session:
        entitlement = entitlements.grant(session, account, package, START)
    assert entitlement.valid_until is None
    assert not _entitled(db, account, asset, START - timedelta(microseconds=1))
    assert _entitled(db, account, asset, START + timedelta(days=3650))


def test_grant_starts_now_by_default(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    account = _account(db)
    with db.session() as session:
        entitlements.grant(session, account, package)
    assert _entitled(db, account, asset, datetime.now(UTC) + timedelta(seconds=1))
    assert not _entitled(db, account, asset, datetime.now(UTC) - timedelta(hours=1))


def test_offsets_are_instants_not_wall_clocks(db: Database, premium: tuple[str, str]) -> None:
    """12:00 at +02:00 is 10:00 UTC, also on SQLite, which stores no offset."""
    package, asset = premium
    account = _account(db)
    paris = timezone(timedelta(hours=2))
    with db.session() as session:
        entitlements.grant(session, account, package, START.astimezone(paris),
                           END.astimezone(paris))
    with db.session() as session:
        stored = entitlements.page_entitlements(session, 1, None, account)[0]
    assert stored.valid_from == START and stored.valid_from.tzinfo is not None
    assert _entitled(db, account, asset, START.astimezone(paris))
    assert not _entitled(db, account, asset, (START - timedelta(minutes=1)).astimezone(paris))
    tokyo = timezone(timedelta(hours=9))
    assert not _entitled(db, account, asset, END.astimezone(tokyo))


def test_only_that_account_and_that_package_s_assets(db: Database,
                                                     premium: tuple[str, str]) -> None:
    package, asset = premium
    account, neighbour = _account(db), _account(db)
    elsewhere = _asset(db)
    with db.session() as session:
        packages.create_package(session, "sports")
        packages.add_asset(session, "sports", elsewhere)
        entitlements.grant(session, account, package, START)
    inside = START + timedelta(days=1)
    assert _entitled(db, account, asset, inside)
    assert not _entitled(db, neighbour, asset, inside)
    assert not _entitled(db, account, elsewhere, inside)
    assert not _entitled(db, account, "0" * 32, inside)


def test_any_package_holding_the_asset_will_do(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    account = _account(db)
    with db.session() as session:
        packages.create_package(session, "basic")
        packages.add_asset(session, "basic", asset)
        entitlements.grant(session, account, "basic", START, START + timedelta(days=1))
        entitlements.grant(session, account, package, END)
    assert _entitled(db, account, asset, START)
    assert not _entitled(db, account, asset, START + timedelta(days=2))
    assert _entitled(db, account, asset, END)


def test_naive_times_are_refused(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    account = _account(db)
    with pytest.raises(ValueError), db.session() as session:
        is_entitled(session, account, asset, datetime(2030, 1, 1))
    with pytest.raises(InvalidValue, match="time zone"), db.session() as session:
        entitlements.grant(session, account, package, datetime(2030, 1, 1))


def test_empty_windows_are_refused(db: Database, premium: tuple[str, str]) -> None:
    account = _account(db)
    for until in (START, START - timedelta(days=1)):
        with pytest.raises(InvalidValue, match="after valid_from"), db.session() as session:
            entitlements.grant(session, account, premium[0], START, until)


def test_grant_needs_a_real_account_and_package(db: Database, premium: tuple[str, str]) -> None:
    with pytest.raises(NotFound, match="account"), db.session() as session:
        entitlements.grant(session, "f" * 32, premium[0], START)
    with pytest.raises(NotFound, match="package"), db.session() as session:
        entitlements.grant(session, _account(db), "gold", START)


def test_packages_hold_assets_by_id(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    more = sorted(_asset(db) for _ in range(3))
    with db.session() as session:
        for asset_id in more:
            assert packages.add_asset(session, package, asset_id)[1]
        link, added = packages.add_asset(session, package, asset)
        assert not added and link.asset_id == asset, "adding twice is harmless"
        with pytest.raises(NotFound, match="asset"):
            packages.add_asset(session, package, "0" * 32)
        with pytest.raises(NotFound, match="package"):
            packages.add_asset(session, "gold", asset)
    with db.session() as session:
        first = packages.page_assets(session, package, 2, None)
        rest = packages.page_assets(session, package, 10, first[-1].asset_id)
        assert [a.asset_id for a in first + rest] == sorted([asset, *more])
        assert packages.remove_asset(session, package, asset)
        assert not packages.remove_asset(session, package, asset)


def test_a_deleted_asset_leaves_its_packages(db: Database, premium: tuple[str, str]) -> None:
    package, asset = premium
    with db.session() as session:
        found = session.get(Asset, asset)
        assert found is not None
        session.delete(found)
    with db.session() as session:
        assert session.query(PackageAsset).count() == 0


def test_package_names_are_slugs(db: Database, subtests: pytest.Subtests) -> None:
    for name in ["", "Premium", "premium tier", "-x", "p" * 65, "p\n"]:
        with (subtests.test(name=name), pytest.raises(InvalidValue, match="name"),
              db.session() as session):
            packages.create_package(session, name)


def test_package_names_are_unique_and_listed_in_order(db: Database) -> None:
    with db.session() as session:
        for name in ("sports", "basic", "premium", "kids"):
            packages.create_package(session, name)
    with pytest.raises(AlreadyExists), db.session() as session:
        packages.create_package(session, "basic")
    with db.session() as session:
        first = packages.page_packages(session, 3, None)
        rest = packages.page_packages(session, 3, first[-1].name)
    assert [p.name for p in first + rest] == ["basic", "kids", "premium", "sports"]
