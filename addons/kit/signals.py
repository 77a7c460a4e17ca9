"""Stopping gracefully: SIGTERM and SIGINT become an ``asyncio.Event``; main runs on uvloop.

The kubelet (and any Kubernetes node) stops a container with SIGTERM, then SIGKILL after the
grace period. An add-on turns the signal into :class:`StopSignal`'s event, stops taking new work
(readiness goes false), finishes what it has, and exits before the grace period ends. A second
signal while stopping is logged and otherwise ignored: the grace period bounds the wait anyway.

:func:`run` runs the add-on's main coroutine on uvloop when it is installed (the ``fast`` extra)
and on asyncio's own loop otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """While entered, SIGTERM/SIGINT set :attr:`event` (and the previous handlers come back on exit)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.event = asyncio.Event()
        self.received: signal.Signals | None = None
        self._signals = signals
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_signal(self, signum: signal.Signals) -> None:
        if self.event.is_set():
            log.info("%s received while already stopping", signum.name)
            return
        log.info("%s received: stopping", signum.name, extra={"signal": signum.name})
        self.received = signum
        self.event.set()

    def __enter__(self) -> StopSignal:
        self._loop = asyncio.get_running_loop()
        for signum in self._signals:
            self._loop.add_signal_handler(signum, self._on_signal, signum)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        for signum in self._signals:
            self._loop.remove_signal_handler(signum)

    async def wait(self) -> signal.Signals | None:
        await self.event.wait()
        return self.received


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed, else None (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, int | None], *, use_uvloop: bool = True) -> int:
    """Run ``main`` to completion (on uvloop when installed and wanted); its result is the exit code."""
    with asyncio.Runner(loop_factory=loop_factory() if use_uvloop else None) as runner:
        return runner.run(main) or 0
