"""One run per asset at a time, fenced: against the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stb_origin.assets import runs
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id, utcnow
from stb_origin.services import Services
from tests.support.workers import asset_row

LEASE_S = 60.0


def _queued(services: Services) -> str:
    asset_id = new_id()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title="t", source_key=f"sources/{asset_id}/s.mp4"))
    return asset_id


def test_a_live_run_holds_its_asset_alone(services):
    asset_id = _queued(services)
    first = runs.claim(services.db, asset_id, LEASE_S)
    assert first is not None and asset_row(services, asset_id).status == "processing"
    assert runs.claim(services.db, asset_id, LEASE_S) is None, "a second run while it lives"
    runs.write(services.db, first, progress=40)  # renews the lease
    assert runs.claim(services.db, asset_id, LEASE_S,
                      now=utcnow() + timedelta(seconds=LEASE_S - 1)) is None


def test_a_superseded_run_can_neither_write_progress_nor_publish(services):
    asset_id = _queued(services)
    old = runs.claim(services.db, asset_id, LEASE_S)
    assert old is not None
    # The old run falls silent (paused, partitioned, its worker presumed dead).
    later = utcnow() + timedelta(seconds=LEASE_S + 1)
    new = runs.claim(services.db, asset_id, LEASE_S, now=later)
    assert new is not None and new.token > old.token

    with pytest.raises(runs.Superseded):
        runs.write(services.db, old, progress=60)
    with pytest.raises(runs.Superseded):
        runs.finish(services.db, old, "vold", [], keep_old_s=3600)
    assert runs.retry_or_fail(services.db, asset_id, "internal_error", "x", 4,
                              token=old.token) is None
    assert asset_row(services, asset_id).progress == 0

    runs.finish(services.db, new, "vnew", [{"name": "360p"}], keep_old_s=3600)
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.version, asset.progress) == ("ready", "vnew", 100)
    assert runs.claim(services.db, asset_id, LEASE_S) is None, "a ready asset is not run again"


def test_the_heartbeat_notices_that_the_run_was_superseded(services):
    asset_id = _queued(services)
    run = runs.claim(services.db, asset_id, LEASE_S)
    assert run is not None
    with runs.kept_alive(services.db, run, every_s=0.05) as check:
        check()
        with services.db.session() as session:  # another run claims it
            session.get(Asset, asset_id).run += 1  # type: ignore[union-attr]
        deadline = utcnow() + timedelta(seconds=5)
        while utcnow() < deadline:
            try:
                check()
            except runs.Superseded:
                break
        else:
            pytest.fail("the heartbeat never noticed the lost lease")


def test_failed_attempts_back_off_then_fail_with_the_cause(services):
    asset_id = _queued(services)
    now = utcnow()
    for attempt, backoff in ((1, 15), (2, 60)):
        run = runs.claim(services.db, asset_id, LEASE_S, now=now)
        assert run is not None and run.attempt == attempt
        assert runs.retry_or_fail(services.db, asset_id, "disk_full", "no space", 3,
                                  token=run.token, now=now) == "queued"
        asset = asset_row(services, asset_id)
        assert (asset.attempt, asset.error_code) == (attempt + 1, "disk_full")
        assert asset.next_attempt_at == now + timedelta(seconds=backoff)
    run = runs.claim(services.db, asset_id, LEASE_S, now=now)
    assert run is not None and run.attempt == 3
    assert runs.retry_or_fail(services.db, asset_id, "disk_full", "no space", 3,
                              token=run.token) == "failed"
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.error_code, asset.error_message) == ("failed", "disk_full",
                                                                      "no space")


def test_a_dead_run_is_retried_only_once_its_lease_lapsed(services):
    asset_id = _queued(services)
    assert runs.claim(services.db, asset_id, LEASE_S) is not None
    lapsed = utcnow() - timedelta(seconds=LEASE_S)
    assert runs.retry_or_fail(services.db, asset_id, "worker_lost", "gone", 4,
                              lapsed_before=lapsed) is None, "its heartbeat is fresh"
    later = utcnow() + timedelta(seconds=LEASE_S + 1)
    assert runs.retry_or_fail(services.db, asset_id, "worker_lost", "gone", 4,
                              lapsed_before=later - timedelta(seconds=LEASE_S)) == "queued"


def test_a_cold_stop_puts_the_asset_back_on_the_same_attempt(services):
    asset_id = _queued(services)
    run = runs.claim(services.db, asset_id, LEASE_S)
    assert run is not None
    runs.write(services.db, run, progress=25)
    assert runs.put_back(services.db, asset_id)
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.progress, asset.attempt) == ("queued", 0, 1)
    assert not runs.put_back(services.db, asset_id)


def _republish(services: Services, asset_id: str) -> int | None:
    with services.db.session() as session:
        return runs.republish(session, asset_id)


def test_republishing_a_ready_asset_queues_a_fresh_run_and_keeps_its_version(services):
    asset_id = _queued(services)
    run = runs.claim(services.db, asset_id, LEASE_S)
    assert run is not None
    runs.finish(services.db, run, "vold", [{"name": "360p"}], keep_old_s=3600)

    assert _republish(services, asset_id) == 1
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.attempt, asset.version, asset.next_attempt_at) == (
        "queued", 1, "vold", None), "the old version plays on until a new one is published"
    again = runs.claim(services.db, asset_id, LEASE_S)
    assert again is not None and again.token > run.token


def test_republishing_a_failed_asset_gives_it_its_attempts_again(services):
    asset_id = _queued(services)
    run = runs.claim(services.db, asset_id, LEASE_S)
    assert run is not None
    assert runs.retry_or_fail(services.db, asset_id, "internal_error", "x", 1,
                              token=run.token) == "failed"
    assert _republish(services, asset_id) == 1
    asset = asset_row(services, asset_id)
    assert (asset.status, asset.attempt, asset.error_code) == ("queued", 1, None)


def test_republishing_supersedes_a_run_in_progress(services):
    asset_id = _queued(services)
    run = runs.claim(services.db, asset_id, LEASE_S)
    assert run is not None
    # A job id of its own: the superseded run's job may still be winding down.
    assert _republish(services, asset_id) == 2
    with pytest.raises(runs.Superseded):
        runs.write(services.db, run, progress=50)
    with pytest.raises(runs.Superseded):
        runs.finish(services.db, run, "vstale", [], keep_old_s=3600)
    assert asset_row(services, asset_id).status == "queued"
    assert runs.claim(services.db, asset_id, LEASE_S) is not None


def test_a_queued_asset_waits_as_it_is(services):
    asset_id = _queued(services)
    assert _republish(services, asset_id) is None
    assert (asset_row(services, asset_id).status, asset_row(services, asset_id).run) == (
        "queued", 0)
    assert _republish(services, new_id()) is None, "no such asset"
