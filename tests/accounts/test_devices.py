from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from stb_origin.accounts import devices
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.errors import DeviceLimitReached, InvalidValue, NotFound
from stb_origin.accounts.models import Account, Device
from stb_origin.db import Database
from stb_origin.db.paging import UnknownCursor
from stb_origin.db.types import new_id

UHD = Capabilities(max_width=3840, max_height=2160, codecs=("avc1.640028", "hvc1", "mp4a.40.2"))
LIMIT = 3


def _account(db: Database) -> str:
    with db.session() as session:
        account = Account(id=new_id())
        session.add(account)
    return account.id


def _register(db: Database, account_id: str, serial: str, limit: int = LIMIT) -> Device:
    with db.session() as session:
        return devices.register_device(session, account_id, serial, "Box 4K", UHD,
                                       max_devices=limit)


def _active(db: Database, account_id: str) -> int:
    with db.session() as session:
        return session.query(Device).filter_by(account_id=account_id, state="active").count()


def test_register_up_to_the_limit_then_refuse(db: Database) -> None:
    account = _account(db)
    boxes = [_register(db, account, f"SN-{n}") for n in range(LIMIT)]
    assert all(box.state == "active" and box.last_seen_at is not None for box in boxes)
    assert boxes[0].to_json()["capabilities"] == {
        "max_width": 3840, "max_height": 2160, "codecs": ["avc1.640028", "hvc1", "mp4a.40.2"],
        "video_ranges": []}
    with pytest.raises(DeviceLimitReached) as refused:
        _register(db, account, "SN-extra")
    assert refused.value.limit == LIMIT
    assert _active(db, account) == LIMIT
    # The limit is per account.
    assert _register(db, _account(db), "SN-extra").state == "active"


def test_revoking_frees_a_slot_and_is_for_good(db: Database) -> None:
    account = _account(db)
    boxes = [_register(db, account, f"SN-{n}") for n in range(LIMIT)]
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with db.session() as session:
        revoked = devices.revoke_device(session, boxes[0].id, at=when)
    assert revoked.state == "revoked" and revoked.revoked_at == when
    with db.session() as session:
        again = devices.revoke_device(session, boxes[0].id)
        assert again.revoked_at == when, "revoking twice keeps the first time"
        assert not devices.is_device_active(session, boxes[0].id)
        assert devices.is_device_active(session, boxes[1].id)
        assert not devices.is_device_active(session, "0" * 32)
    # The same box signs in again: a new device, in the freed slot.
    back = _register(db, account, "SN-0")
    assert back.id != boxes[0].id and back.state == "active"
    with pytest.raises(NotFound), db.session() as session:
        devices.revoke_device(session, "0" * 32)


def test_an_active_serial_registers_once(db: Database) -> None:
    account = _account(db)
    first = _register(db, account, "SN-1")
    with db.session() as session:
        again = devices.register_device(session, account, "SN-1", "Box 4K v2",
                                        Capabilities(codecs=("avc1",)), max_devices=1)
    assert again.id == first.id, "no second slot, even at the limit"
    assert again.model == "Box 4K v2" and again.capabilities["codecs"] == ["avc1"]
    assert _active(db, account) == 1


def test_bad_serials_and_models(db: Database, subtests: pytest.Subtests) -> None:
    account = _account(db)
    for serial, model, message in [
        ("", "Box", "serial"), ("SN 1", "Box", "serial"), ("-SN", "Box", "serial"),
        ("S" * 65, "Box", "serial"), ("SN-1\n", "Box", "serial"),
        ("SN-1", "", "model"), ("SN-1", "   ", "model"), ("SN-1", "Box\n", "model"),
    ]:
        with (subtests.test(serial=serial, model=model),
              pytest.raises(InvalidValue, match=message), db.session() as session):
            devices.register_device(session, account, serial, model, UHD, max_devices=LIMIT)
    assert _active(db, account) == 0


@pytest.mark.parametrize("data, message", [
    ([], "expected an object"),
    ({"max_height": "1080"}, "max_height"),
    ({"max_height": True}, "max_height"),
    ({"max_width": 0}, "max_width"),
    ({"max_width": 1080.0}, "max_width"),
    ({"codecs": "avc1"}, "codecs"),
    ({"codecs": [1]}, "codecs"),
    ({"codecs": [["avc1"]]}, "codecs"),
    ({"codecs": ["avc1 640028"]}, "codecs"),
    ({"codecs": [f"c{n}" for n in range(33)]}, "codecs"),
    ({"video_ranges": "PQ"}, "video_ranges"),
    ({"video_ranges": ["SDR"]}, "video_ranges: only PQ, HLG"),
    ({"video_ranges": ["hdr10"]}, "video_ranges"),
    ({"hdr": True}, 'capabilities: unknown field "hdr"; allowed: codecs, max_height, max_width,'
                    ' video_ranges'),
])
def test_capabilities_are_checked(data: object, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        Capabilities.from_json(data)


def test_capabilities_round_trip() -> None:
    caps = Capabilities.from_json({"max_height": 1080, "codecs": ["avc1", "mp4a.40.2", "avc1"]})
    assert caps == Capabilities(max_height=1080, codecs=("avc1", "mp4a.40.2"))
    assert Capabilities.from_json(caps.to_json()) == caps
    assert Capabilities.from_json({}) == Capabilities()
    hdr = Capabilities.from_json({"video_ranges": ["HLG", "PQ", "HLG"]})
    assert hdr.video_ranges == ("HLG", "PQ")
    assert Capabilities.from_json(hdr.to_json()) == hdr


def test_unknown_account(db: Database) -> None:
    with pytest.raises(NotFound), db.session() as session:
        devices.register_device(session, "f" * 32, "SN-1", "Box", UHD, max_devices=LIMIT)


def test_touch_writes_last_seen_at_most_once_a_minute(db: Database) -> None:
    account = _account(db)
    box = _register(db, account, "SN-1")
    start = box.last_seen_at
    assert start is not None
    with db.session() as session:
        assert not devices.touch_device(session, box.id, start + timedelta(seconds=30))
        assert devices.touch_device(session, box.id, start + timedelta(minutes=2))
        assert not devices.touch_device(session, "0" * 32)
    with db.session() as session:
        seen = devices.get_device(session, box.id)
        assert seen is not None and seen.last_seen_at == start + timedelta(minutes=2)
        devices.revoke_device(session, box.id)
    with db.session() as session:
        assert not devices.touch_device(session, box.id, start + timedelta(hours=1)), \
            "a revoked device is never seen again"


def test_list_devices_newest_first(db: Database) -> None:
    account = _account(db)
    made = [_register(db, account, f"SN-{n}", limit=10) for n in range(5)]
    _register(db, _account(db), "SN-other")
    with db.session() as session:
        first = devices.page_devices(session, 3, None, account)
        second = devices.page_devices(session, 3, first[-1].id, account)
        with pytest.raises(UnknownCursor, match="after"):
            devices.page_devices(session, 3, "0" * 32, account)
        assert len(devices.page_devices(session, 10, None)) == 6
    assert [d.id for d in first + second] == [d.id for d in reversed(made)]


# --- the device limit under concurrency ----------------------------------------------

def test_concurrent_registrations_at_the_limit_admit_exactly_one(db: Database) -> None:
    account = _account(db)
    for n in range(LIMIT - 1):
        _register(db, account, f"SN-{n}")
    contenders = 4
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []

    def contend(n: int) -> None:
        barrier.wait()
        try:
            _register(db, account, f"SN-new-{n}")
            outcomes.append("registered")
        except DeviceLimitReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * (contenders - 1) + ["registered"]
    assert _active(db, account) == LIMIT


def test_a_second_registration_waits_for_the_first_to_commit(db: Database) -> None:
    """Deterministic interleaving: B starts while A holds the account lock with the
    last slot taken but not committed; B must wait, then see A's device."""
    account = _account(db)
    for n in range(LIMIT - 1):
        _register(db, account, f"SN-{n}")
    a_registered, a_may_commit, b_done = threading.Event(), threading.Event(), threading.Event()
    outcome: list[str] = []

    def a() -> None:
        with db.session() as session:
            devices.register_device(session, account, "SN-a", "Box", UHD, max_devices=LIMIT)
            a_registered.set()
            a_may_commit.wait(timeout=30)

    def b() -> None:
        try:
            _register(db, account, "SN-b")
            outcome.append("registered")
        except DeviceLimitReached:
            outcome.append("refused")
        b_done.set()

    thread_a = threading.Thread(target=a)
    thread_a.start()
    assert a_registered.wait(timeout=30)
    thread_b = threading.Thread(target=b)
    thread_b.start()
    assert not b_done.wait(timeout=0.5), "B went ahead while A held the account"
    a_may_commit.set()
    thread_a.join(timeout=30)
    thread_b.join(timeout=30)
    assert outcome == ["refused"]
    assert _active(db, account) == LIMIT
