from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from stb_origin.db import Database
from stb_origin.drm import keystore
from stb_origin.drm.keys import generate_key
from stb_origin.drm.keystore import ContentKeyRecord
from stb_origin.envelope import Envelope, UnwrapError

ASSET = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32


@pytest.fixture
def envelope() -> Envelope:
    return Envelope(os.urandom(32))


def test_store_then_load(db: Database, envelope: Envelope) -> None:
    keys = [generate_key() for _ in range(3)]
    with db.session() as session:
        keystore.store(session, ASSET, keys, envelope)
    with db.session() as session:
        for ck in keys:
            assert keystore.load(session, ASSET, ck.key_id, envelope) == ck.key
        assert keystore.load(session, ASSET, "nope", envelope) is None
        assert keystore.load(session, OTHER, keys[0].key_id, envelope) is None
        assert sorted(keystore.key_ids(session, ASSET)) == sorted(k.key_id for k in keys)


def test_keys_are_never_stored_in_clear(db: Database, envelope: Envelope,
                                        tmp_path: Path) -> None:
    keys = [generate_key() for _ in range(3)]
    with db.session() as session:
        keystore.store(session, ASSET, keys, envelope)
    with db.session() as session:
        rows = session.scalars(select(ContentKeyRecord)).all()
        assert {r.key_id for r in rows} == {k.key_id for k in keys}
        for row in rows:
            assert row.created_at is not None
            assert all(k.key not in row.wrapped for k in keys)
            assert "wrapped" not in repr(row)
    db.dispose()  # flush the WAL into the file before reading its bytes
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("stb.db*"))
    for ck in keys:
        assert ck.key not in raw and ck.key.hex().encode() not in raw


def test_a_row_moved_to_another_asset_does_not_unwrap(db: Database, envelope: Envelope) -> None:
    ck = generate_key()
    with db.session() as session:
        keystore.store(session, ASSET, [ck], envelope)
    with db.session() as session:
        row = session.get(ContentKeyRecord, (ASSET, ck.key_id))
        assert row is not None
        session.add(ContentKeyRecord(asset_id=OTHER, key_id=ck.key_id, wrapped=row.wrapped))
    with db.session() as session, pytest.raises(UnwrapError):
        keystore.load(session, OTHER, ck.key_id, envelope)
    with db.session() as session, pytest.raises(UnwrapError):
        keystore.load(session, ASSET, ck.key_id, Envelope(os.urandom(32)))


def test_delete_for_asset_and_delete_other_versions(db: Database, envelope: Envelope) -> None:
    unversioned, old, new = ([generate_key()] for _ in range(3))
    new.append(generate_key())
    other = generate_key()
    with db.session() as session:
        keystore.store(session, ASSET, unversioned, envelope)
        keystore.store(session, ASSET, old, envelope, version="vold")
        keystore.store(session, ASSET, new, envelope, version="vnew")
        keystore.store(session, OTHER, [other], envelope, version="vold")
    with db.session() as session:
        assert keystore.delete_other_versions(session, ASSET, "vnew") == 2
    with db.session() as session:
        assert sorted(keystore.key_ids(session, ASSET)) == sorted(k.key_id for k in new)
        assert keystore.delete_for_asset(session, ASSET) == 2
    with db.session() as session:
        assert keystore.key_ids(session, ASSET) == []
        assert keystore.load(session, OTHER, other.key_id, envelope) == other.key


def test_the_same_key_id_twice_for_one_asset_is_refused(db: Database,
                                                        envelope: Envelope) -> None:
    ck = generate_key()
    with db.session() as session:
        keystore.store(session, ASSET, [ck], envelope)
    with pytest.raises(IntegrityError), db.session() as session:
        keystore.store(session, ASSET, [ck], envelope)
