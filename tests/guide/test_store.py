"""The guide's writes and reads on both real engines: SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stb_origin.assets.channels import Channel
from stb_origin.db import Database
from stb_origin.db.types import new_id
from stb_origin.guide import store
from stb_origin.guide.models import ChannelMapping
from stb_origin.guide.xmltv import parse
from tests.guide.conftest import Show, document, xmltv_time

NOW = datetime(2026, 6, 15, 12, 10, tzinfo=UTC)


@pytest.fixture
def db(either_db: Database) -> Database:
    return either_db


def test_import_replace_window_now_next_and_prune(db: Database, tmp_path: Path) -> None:
    channel = new_id()
    with db.session() as session:
        session.add(Channel(id=channel, name="A", number=1, sources=["udp://239.0.0.1:1234"],
                            ladder="auto"))
        session.flush()
        session.add(ChannelMapping(xmltv_id="a", channel_id=channel))
    hours = [NOW.replace(minute=0) + timedelta(hours=h) for h in range(-3, 4)]
    shows = [Show("a", xmltv_time(start, 120), xmltv_time(start + timedelta(hours=1), 120),
                  f"At {start:%H}") for start in hours]
    path = tmp_path / "guide.xml"
    path.write_bytes(document(shows))
    for replaced in (0, 7):
        with db.session() as session:
            report = store.import_document(session, parse(path), NOW)
        assert (report["imported"], report["replaced"]) == (7, replaced)
    with db.session() as session:
        window = store.programmes(session, [channel], NOW - timedelta(minutes=30),
                                  NOW + timedelta(minutes=60))
        assert [p.title for p in window] == ["At 11", "At 12", "At 13"]
        on_air, following = store.now_and_next(session, channel, NOW)
        assert on_air is not None and following is not None
        assert (on_air.title, on_air.starts_at) == ("At 12", datetime(2026, 6, 15, 12,
                                                                      tzinfo=UTC))
        assert following.title == "At 13"
        assert [c.id for c in store.channels(session, None)] == [channel]
        assert store.prune(session, NOW) == 3
        assert len(store.programmes(session, [channel], NOW - timedelta(hours=6),
                                    NOW + timedelta(hours=6))) == 4
