"""The upserts under concurrent reports, on SQLite and PostgreSQL: one row per item,
holding the report with the latest client time, whatever order they commit in."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from stb_origin.activity import store
from stb_origin.activity.models import ChannelVisit, ResumePoint
from stb_origin.assets.records import Asset
from stb_origin.db.types import utcnow
from stb_origin.services import Services
from tests.activity.conftest import BOTH_ENGINES, DURATION_S, new_channel, ready_asset
from tests.drm.support import household

WRITERS = 8
REPORTS = 60

pytestmark = BOTH_ENGINES


def test_concurrent_reports_leave_the_latest(services: Services, family: str) -> None:
    film = ready_asset(services)
    channel = new_channel(services)
    box = household(services)
    start = utcnow()
    # Report i is at start + i s, at position i; sent in a shuffled order by 8 threads.
    order = list(range(REPORTS))
    random.Random(12).shuffle(order)

    def send(i: int) -> None:
        at = start + timedelta(seconds=i)
        with services.db.session() as session:
            asset = session.get(Asset, film)
            assert asset is not None
            store.record_asset(session, box.account_id, "main", asset, float(i), at,
                               box.device_id)
            store.record_channel(session, box.account_id, "main", channel, at, box.device_id)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(send, order))

    latest = start + timedelta(seconds=REPORTS - 1)
    with services.db.session() as session:
        [point] = session.query(ResumePoint).all()
        [visit] = session.query(ChannelVisit).all()
    assert point.position_s == REPORTS - 1 and point.reported_at == latest
    assert visit.reported_at == latest


def test_the_same_report_twice_is_one_row(services: Services, family: str) -> None:
    film = ready_asset(services)
    box = household(services)
    at = utcnow()
    for _ in range(2):
        with services.db.session() as session:
            asset = session.get(Asset, film)
            assert asset is not None
            kept = store.record_asset(session, box.account_id, "main", asset, 3.0, at,
                                      box.device_id)
            assert kept.position_s == 3.0
    with services.db.session() as session:
        assert session.query(ResumePoint).count() == 1


def test_finished_at_95_percent_and_unfinished_by_a_later_rewind(
        services: Services, family: str) -> None:
    film = ready_asset(services)
    box = household(services)
    at = utcnow()
    with services.db.session() as session:
        asset = session.get(Asset, film)
        assert asset is not None
        just_under = store.record_asset(session, box.account_id, "main", asset,
                                        DURATION_S * 0.949, at, box.device_id)
        assert not just_under.finished
        done = store.record_asset(session, box.account_id, "main", asset, DURATION_S * 0.95,
                                  at + timedelta(seconds=1), box.device_id)
        assert done.finished
        # Watching it again from the start puts it back on the row.
        again = store.record_asset(session, box.account_id, "main", asset, 4.0,
                                   at + timedelta(seconds=2), box.device_id)
        assert not again.finished
