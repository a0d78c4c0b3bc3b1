"""Publishing, fencing, leases and retention of live segments over a real database and
storage."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stb_origin.drm import keystore
from stb_origin.live import retention, urls
from stb_origin.live.channel_run import ChannelRun
from stb_origin.live.lease import PREFIX, Leases
from stb_origin.live.publisher import Publisher, Superseded, next_position
from stb_origin.live.runner import Runner
from stb_origin.live.sources import input_args
from stb_origin.services import Services
from tests.e2e.player import decrypt
from tests.support import live

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def segment_files(tmp_path: Path, seq: int, renditions: tuple[str, ...] = ("108p", "72p")
                  ) -> dict[str, Path]:
    files = {}
    for name in renditions:
        path = tmp_path / f"{name}-{seq}.ts"
        path.write_bytes(f"{name} segment {seq} ".encode() * 50)
        files[name] = path
    return files


def claimed(services: Services, channel_id: str, runner: str = "r1") -> int:
    epoch = Leases(services.redis, services.db, runner, 5).claim(channel_id)
    assert epoch is not None
    return epoch


def test_a_published_segment_is_stored_encrypted_then_listed(services: Services,
                                                             tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    epoch = claimed(services, channel_id)
    publisher = Publisher(services, channel_id, epoch, key_rotation_s=600)
    files = segment_files(tmp_path, 0)
    clear = {name: path.read_bytes() for name, path in files.items()}
    publisher.publish(0, 0, T0, 2.0, files, {"active_source": 0})

    [row] = live.segments(services, channel_id)
    assert (row.seq, row.epoch, row.renditions, row.discontinuity) == (0, epoch, ["108p", "72p"], 0)
    with services.db.session() as session:
        key = keystore.load(session, channel_id, row.key_id, services.envelope)
    assert key is not None
    for name, data in clear.items():
        stored = services.storage.get_bytes(urls.segment_key(channel_id, name, epoch, 0))
        assert stored != data and decrypt(stored, key, bytes.fromhex(row.iv)) == data
    channel = live.channel(services, channel_id)
    assert channel.status == "live" and channel.last_segment_at == T0 + timedelta(seconds=2)
    assert next_position(services, channel_id) == next_position(services, channel_id)
    assert next_position(services, channel_id).seq == 1
    assert next_position(services, channel_id).discontinuity == 1


def test_keys_rotate_with_the_period_and_each_segment_has_its_own_iv(
        services: Services, tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    publisher = Publisher(services, channel_id, claimed(services, channel_id), key_rotation_s=60)
    for n in range(4):  # 0, 30, 60, 90 s: two periods
        publisher.publish(n, 0, T0 + timedelta(seconds=30 * n), 2.0, segment_files(tmp_path, n),
                          {})
    rows = live.segments(services, channel_id)
    assert rows[0].key_id == rows[1].key_id != rows[2].key_id == rows[3].key_id
    assert len({r.iv for r in rows}) == 4


def test_a_run_that_lost_the_channel_lists_nothing(services: Services, tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    old = Publisher(services, channel_id, claimed(services, channel_id, "r1"), 600)
    old.publish(0, 0, T0, 2.0, segment_files(tmp_path, 0), {})
    services.redis.delete(f"stb:live:lease:{channel_id}")  # Redis forgot; another claims
    new_epoch = claimed(services, channel_id, "r2")
    with pytest.raises(Superseded):
        old.publish(1, 0, T0 + timedelta(seconds=2), 2.0, segment_files(tmp_path, 1), {})
    with pytest.raises(Superseded):
        old.report(status="failed")
    assert [r.seq for r in live.segments(services, channel_id)] == [0]
    assert live.channel(services, channel_id).status == "starting"
    assert live.channel(services, channel_id).epoch == new_epoch


def test_only_one_runner_holds_a_lease_and_only_its_holder_renews_or_releases(
        services: Services) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    one = Leases(services.redis, services.db, "r1", 5)
    two = Leases(services.redis, services.db, "r2", 5)
    assert one.claim(channel_id) == 1
    assert two.claim(channel_id) is None
    assert two.renew([channel_id]) == [channel_id]  # lost: never its
    two.release(channel_id)
    assert one.holder(channel_id) == "r1" and one.renew([channel_id]) == []
    one.release(channel_id)
    assert two.claim(channel_id) == 2


def test_one_renewal_keeps_every_held_lease_and_names_the_lost_ones(
        services: Services) -> None:
    channels = [live.add_channel(services, [f"udp://127.0.0.1:{9 + n}"]) for n in range(3)]
    one = Leases(services.redis, services.db, "r1", 5)
    two = Leases(services.redis, services.db, "r2", 5)
    assert one.claim(channels[0]) == one.claim(channels[2]) == 1
    assert two.claim(channels[1]) == 1
    services.redis.pexpire(PREFIX + channels[0], 100)

    assert one.renew(channels) == [channels[1]]
    assert services.redis.pttl(PREFIX + channels[0]) > 4000
    assert services.redis.pttl(PREFIX + channels[2]) > 4000
    assert one.renew([]) == []


def test_retention_deletes_what_left_the_window_objects_first(services: Services,
                                                              tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"], dvr_window_s=60)
    epoch = claimed(services, channel_id)
    publisher = Publisher(services, channel_id, epoch, 600)
    for n in range(10):  # every 20 s: 0 .. 180 s
        publisher.publish(n, 0, T0 + timedelta(seconds=20 * n), 2.0,
                          segment_files(tmp_path, n), {})
    now = T0 + timedelta(seconds=180 + retention.GRACE_S)
    # Kept: from now - max(60 s DVR, live window) - grace on.
    window = max(60, services.settings.live_window_s)
    oldest_kept = now - timedelta(seconds=window + retention.GRACE_S)
    removed = retention.expire(services, channel_id, 60, now=now)
    rows = live.segments(services, channel_id)
    assert all(r.starts_at >= oldest_kept for r in rows)
    assert removed == 10 - len(rows) and removed > 0
    stored = list(services.storage.list_keys(f"hls/{channel_id}/seg/"))
    assert sorted(stored) == sorted(urls.segment_key(channel_id, name, epoch, r.seq)
                                    for r in rows for name in ("108p", "72p"))


def test_a_new_run_sweeps_what_a_dead_one_stored_but_never_listed(
        services: Services, tmp_path: Path) -> None:
    channel_id = live.add_channel(services, ["udp://127.0.0.1:9"])
    epoch = claimed(services, channel_id)
    Publisher(services, channel_id, epoch, 600).publish(0, 0, T0, 2.0,
                                                        segment_files(tmp_path, 0), {})
    # Died after storing one rendition of segment 1, before listing it.
    orphan = urls.segment_key(channel_id, "108p", epoch, 1)
    services.storage.put_bytes(orphan, b"half", "video/mp2t")
    next_seq = next_position(services, channel_id).seq
    assert retention.sweep_unlisted(services, channel_id, next_seq) == 1
    assert sorted(services.storage.list_keys(f"hls/{channel_id}/seg/")) == sorted(
        urls.segment_key(channel_id, name, epoch, 0) for name in ("108p", "72p"))


def test_a_long_round_of_claims_keeps_the_leases_already_held(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # A runner starting (or taking over) dozens of channels on a busy core spends
    # longer claiming them, each waiting on the database, than a lease lasts: the
    # ones already on air must not lapse.
    channels = [live.add_channel(services, [f"udp://127.0.0.1:{9 + n}"]) for n in range(6)]
    runner = Runner(services, input_args, runner_id="r1")
    runner._leases = Leases(services.redis, services.db, "r1", 1.0)  # 1 s leases
    claim = Leases.claim

    def slow_claim(self: Leases, channel_id: str) -> int | None:
        time.sleep(0.4)
        return claim(self, channel_id)

    monkeypatch.setattr(Leases, "claim", slow_claim)
    monkeypatch.setattr(ChannelRun, "run", lambda self: self.stop_event.wait())
    stop = threading.Event()
    serving = threading.Thread(target=runner.serve, args=(stop,))
    serving.start()
    try:
        live.wait_for("every channel claimed", lambda: len(runner.held()) == 6, timeout=20)
        time.sleep(1.5)  # the first claim is 3.5 leases old
        assert all(services.redis.get(PREFIX + c) == b"r1" for c in channels)
        assert not any(held.run.stop_event.is_set() for held in runner._held.values())
    finally:
        stop.set()
        serving.join()
    assert not any(services.redis.get(PREFIX + c) for c in channels)  # handed over
