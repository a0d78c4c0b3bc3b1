"""proc.spawn's children can be tied to the life of the process that spawned them, and
proc.stop ends them as ffmpeg likes to be ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from stb_origin import proc
from tests.support.processes import alive, identity, survivors

# A parent that spawns a long sleeper through proc.spawn, says its pid, and waits.
PARENT = """
import sys, time
from stb_origin import proc
child = proc.spawn([sys.executable, "-c", "import time; time.sleep(600)"],
                   die_with_parent=sys.argv[1] == "yes")
print(child.pid, flush=True)
time.sleep(600)
"""


def _spawned_child(die_with_parent: bool) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT,
                               "yes" if die_with_parent else "no"],
                              stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.stdout.close()
    return parent, child


def test_a_child_spawned_to_die_with_its_parent_ends_when_the_parent_is_killed() -> None:
    parent, pid = _spawned_child(die_with_parent=True)
    child = identity(pid)
    assert child is not None and alive(child)
    parent.kill()  # SIGKILL: nothing in the parent can clean up
    parent.wait()
    assert survivors([child]) == []


def test_without_it_the_child_outlives_a_killed_parent() -> None:
    # What dev's children did before: the option is what makes the difference.
    parent, pid = _spawned_child(die_with_parent=False)
    child = identity(pid)
    assert child is not None
    try:
        parent.kill()
        parent.wait()
        assert alive(child)
    finally:
        if alive(child):
            os.kill(pid, signal.SIGKILL)


# Like ffmpeg waiting on a silent source: the first SIGTERM is noted, the second ends it.
DEAF_ONCE = """
import signal, sys, time
heard = []
def term(*_):
    heard.append(1)
    if len(heard) == 2:
        sys.exit(7)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_stop_sends_a_second_sigterm_to_a_child_that_did_not_end_on_the_first() -> None:
    child = subprocess.Popen([sys.executable, "-c", DEAF_ONCE], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    child.stdout.close()
    proc.stop(child, grace_s=30)
    assert child.returncode == 7  # its own exit on the second, not a SIGKILL
