"""Work queues for controllers, with client-go's exact semantics (``util/workqueue``).

A controller queues *keys* ("namespace/name"), not objects, and its workers re-read the cache.
The queue guarantees what makes that safe:

- **Dedup:** a key added while it is already waiting is not queued twice (``dirty`` set).
- **One worker per key:** ``get`` moves the key into ``processing``; a key added again while it
  is being processed waits, and ``done`` queues it once more when the worker finishes — so two
  workers never reconcile the same object at once, and no change is lost.
- **Shutdown:** after :meth:`WorkQueue.shutdown` new adds are ignored; ``get`` still hands out
  what is queued, then raises :class:`QueueShutDown`. :meth:`WorkQueue.shutdown_with_drain`
  also waits until every key being processed is ``done``.

:class:`DelayingQueue` adds ``add_after`` (a key becomes ready after a delay; adding it again
with a shorter delay brings it forward) on an injectable :class:`Clock`.
:class:`RateLimitingQueue` adds ``add_rate_limited``/``forget``/``num_requeues`` over a
:mod:`control.client.ratelimit` limiter.

Items must be hashable. ``len(queue)`` is for information only (metrics, tests), never for
deciding whether to ``add`` or ``get``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from control.client.clock import REAL_CLOCK, Clock, Timer
from control.client.ratelimit import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)


class QueueShutDown(Exception):
    """``get`` on a queue that is shut down and empty: the worker should exit."""


class WorkQueue(Generic[T]):
    """A deduplicating FIFO of keys with the dirty/processing discipline described above."""

    def __init__(self, *, name: str = "") -> None:
        self.name = name
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drained: asyncio.Future[None] | None = None
        self._shutting_down = False
        self._drain = False

    def __len__(self) -> int:
        """How many keys wait to be handed out; for information only."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing (ignored once shutting down)."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return  # done() will queue it again
        self._queue.append(item)
        self._wake_one_getter()

    async def get(self) -> T:
        """The next key, waiting for one if needed; the caller must call :meth:`done` with it.

        Raises :class:`QueueShutDown` once the queue is shut down and empty.
        """
        while not self._queue and not self._shutting_down:
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one_getter()  # pass the wake-up on rather than lose it
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        if not self._queue:
            raise QueueShutDown(self.name)
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        """``item`` is finished; if it was added again meanwhile, it is queued again now."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._wake_one_getter()
        elif not self._processing and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def shutdown(self) -> None:
        """Ignore new adds; workers get what is queued, then :class:`QueueShutDown`. Idempotent."""
        self._drain = False
        self._shutting_down = True
        self._wake_all_getters()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every key handed out has been marked ``done``.

        Workers must call ``done`` for all of them or this waits forever; a later
        :meth:`shutdown` ends the wait.
        """
        self._drain = True
        self._shutting_down = True
        self._wake_all_getters()
        if not self._processing:
            return
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drained)

    def _wake_one_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all_getters(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)


@dataclass(order=True, slots=True)
class _Waiting(Generic[T]):
    ready_at: float
    sequence: int
    item: T = field(compare=False)
    live: bool = field(default=True, compare=False)


class DelayingQueue(WorkQueue[T]):
    """A :class:`WorkQueue` whose keys can also be added after a delay."""

    def __init__(self, *, name: str = "", clock: Clock = REAL_CLOCK) -> None:
        super().__init__(name=name)
        self._clock = clock
        # A heap by ready time; an entry superseded by an earlier one is marked dead, not removed.
        self._waiting: list[_Waiting[T]] = []
        self._entries: dict[T, _Waiting[T]] = {}
        self._sequence = itertools.count()
        self._timer: Timer | None = None
        self._timer_at: float | None = None

    def waiting(self) -> int:
        """How many keys wait for their delay to pass; for information only."""
        return len(self._entries)

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (at once if ``delay <= 0``).

        If it is already waiting, the earlier of the two ready times is kept.
        """
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + delay
        existing = self._entries.get(item)
        if existing is not None:
            if existing.ready_at <= ready_at:
                return
            existing.live = False
        entry = _Waiting(ready_at, next(self._sequence), item)
        self._entries[item] = entry
        heapq.heappush(self._waiting, entry)
        self._schedule()

    def shutdown(self) -> None:
        super().shutdown()
        self._cancel_timer()
        self._waiting.clear()
        self._entries.clear()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def _schedule(self) -> None:
        while self._waiting and not self._waiting[0].live:
            heapq.heappop(self._waiting)
        if not self._waiting:
            self._cancel_timer()
            return
        next_ready = self._waiting[0].ready_at
        if self._timer is not None and self._timer_at == next_ready:
            return
        self._cancel_timer()
        self._timer_at = next_ready
        self._timer = self._clock.call_later(next_ready - self._clock.now(), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        now = self._clock.now()
        while self._waiting and self._waiting[0].ready_at <= now:
            entry = heapq.heappop(self._waiting)
            if entry.live:
                del self._entries[entry.item]
                self.add(entry.item)
        self._schedule()


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` that delays retries by a :class:`RateLimiter` (default: client-go's)."""

    def __init__(
        self, rate_limiter: RateLimiter | None = None, *, name: str = "", clock: Clock = REAL_CLOCK
    ) -> None:
        super().__init__(name=name, clock=clock)
        self.rate_limiter = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter(clock=clock)
        )

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the wait the rate limiter gives it (one more failure counted)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """``item`` succeeded: reset its backoff. (It does not remove it from the queue.)"""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
