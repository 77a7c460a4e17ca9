"""Suite-wide guard: a test that leaves a child process running fails (Python's answer
to client-go's goleak). The leftover is killed so it cannot disturb the tests after it.

Processes started by session- or module-scoped fixtures exist before a test's own
fixtures are set up, so they are not counted against the test that first used them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def _live_children() -> dict[int, str]:
    """Our running (not zombie) child processes: pid -> command line."""
    children = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, pids):
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if stat[stat.rindex(b")") + 2 :][:1] != b"Z":
                children[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return children


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = _live_children()
    yield
    leaked = {pid: cmd for pid, cmd in _live_children().items() if pid not in before}
    for pid in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    if leaked:
        pytest.fail(f"the test left processes running (now killed): {leaked}", pytrace=False)
