"""Processes that start together on one fresh database all end with one schema.

Each process imports everything first, says so, and waits for one byte on stdin;
the test releases them all at once, so their upgrades overlap as replicas' do.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from stb_origin import migrations
from stb_origin.db import Database
from stb_origin.migrations.tables import metadata
from tests.migrations.test_schema import _differences

PROCESSES = 4
TIMEOUT_S = 120
UPGRADE = """
import sys
from stb_origin import migrations
from stb_origin.migrations import tables
tables.metadata()
print("ready", flush=True)
sys.stdin.read(1)
migrations.upgrade(sys.argv[1])
"""


def test_processes_upgrading_at_once_all_succeed_with_one_schema(
        empty_url: str, tmp_path: Path) -> None:
    logs = [tmp_path / f"upgrade-{n}.log" for n in range(PROCESSES)]
    processes = []
    for log in logs:
        with log.open("w") as stderr:
            processes.append(subprocess.Popen(
                [sys.executable, "-c", UPGRADE, empty_url], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, text=True))
    try:
        for process, log in zip(processes, logs, strict=True):
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n", log.read_text()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go")
            process.stdin.close()
        results = [(process.wait(TIMEOUT_S), log.read_text())
                   for process, log in zip(processes, logs, strict=True)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
    assert [code for code, _ in results] == [0] * PROCESSES, results

    assert _differences(empty_url) == []
    database = Database(empty_url)
    with database.engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        names = set(inspect(connection).get_table_names())
    database.dispose()
    assert [v for (v,) in versions] == list(migrations.heads())
    assert names == set(metadata().tables) | {"alembic_version"}
