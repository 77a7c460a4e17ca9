"""Real stand-in processes for the lab's process table, shared by the lab and CLI tests.

A *holder* is a small Python program that claims a pidfile exactly as `kubelab server`
does (``control.lab.claim_pidfile``) and then waits for signals: graceful ones exit on
SIGTERM, stubborn ones ignore it. They let the tests drive `down`, `status` and `up`'s
"already running" path against real processes without an API server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from control import lab

HOLDER = """
import signal, sys
from pathlib import Path
from control.lab import claim_pidfile
if sys.argv[2] == "graceful":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
elif sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with claim_pidfile(Path(sys.argv[1])):
    while True:
        signal.pause()
"""


def wait_for(condition: Callable[[], object], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(b")") + 2 :][:1] == b"Z"


def holders(layout: lab.Layout) -> Iterator[Callable[..., int]]:
    """Generator behind a fixture: yields ``start(name, mode=...) -> pid``, stops them all after."""
    pids: list[int] = []

    def start(name: str = lab.SERVER, *, mode: str = "graceful") -> int:
        pid_file = layout.pid_file(name)
        spawned = lab.spawn(
            name=name,
            argv=[sys.executable, "-c", HOLDER, str(pid_file), mode],
            log_file=layout.data_dir / f"holder-{name}.log",
        )
        pids.append(spawned.pid)
        wait_for(lambda: lab.running_pid(pid_file) == spawned.pid)
        return spawned.pid

    yield start
    for pid in pids:
        lab.terminate(pid, timeout=0)
