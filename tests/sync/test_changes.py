"""The change log hands out numbers in commit order (db.changes)."""

from __future__ import annotations

import threading

from stb_origin.db import Database, changes


def test_a_number_is_never_visible_before_an_earlier_one(migrated_postgres_url: str) -> None:
    """A box reading the log while an earlier writer is still open must not see a later
    writer's row: it would move its cursor past the earlier one and never see it."""
    database = Database(migrated_postgres_url)
    try:
        release, second_done = threading.Event(), threading.Event()
        first_open = threading.Event()

        def first() -> None:
            with database.session() as session:
                changes.record(session, changes.CHANNEL, ["1" * 32])
                first_open.set()
                release.wait(30)

        def second() -> None:
            with database.session() as session:
                changes.record(session, changes.CHANNEL, ["2" * 32])
            second_done.set()

        writers = [threading.Thread(target=first), threading.Thread(target=second)]
        writers[0].start()
        assert first_open.wait(30)
        writers[1].start()
        # The second writer waits for the first; a reader sees neither meanwhile.
        assert not second_done.wait(1.0)
        with database.session() as session:
            assert changes.after(session, 0, "a" * 32, 10) == []
        release.set()
        for writer in writers:
            writer.join(30)
        with database.session() as session:
            found = [(row.seq, row.item) for row in changes.after(session, 0, "a" * 32, 10)]
        assert [item for _, item in found] == ["1" * 32, "2" * 32]
        assert found[0][0] < found[1][0]
    finally:
        database.dispose()
