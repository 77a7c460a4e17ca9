"""Time as an injectable dependency, so backoff, delays and resyncs are testable without waiting.

client-go passes a ``clock.Clock`` into its reflector, delaying queue and rate limiters, and its
tests drive a fake clock forward instead of sleeping. We do the same: everything in this package
that waits or measures time takes a :class:`Clock`; production code uses :class:`LoopClock`
and tests use :class:`control.client.testing.FakeClock`.

The clock is monotonic seconds (a float), never wall time: it measures intervals only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback that can be cancelled before it fires."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time, sleeping and timers: the three things our waiting code needs."""

    def now(self) -> float:
        """Monotonic seconds; only differences between two readings mean anything."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` (a plain function) on the event loop after ``delay`` seconds."""
        ...


class LoopClock:
    """The real clock: ``time.monotonic`` and the running asyncio loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)


REAL_CLOCK: Clock = LoopClock()
