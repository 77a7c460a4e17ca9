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

**Metrics** come through a :class:`MetricsProvider` (client-go's ``workqueue.MetricsProvider``):
the client library defines only the seam, and a component installs a provider that makes real
metrics (``control.controllers.metrics`` makes k8s.io/component-base's Prometheus ones) with
:func:`set_metrics_provider`, or hands one to a queue as ``metrics_provider``. The process-wide
provider is client-go's ``workqueue.SetProvider``: controllers build their own queues, by name,
so the component that runs them (the controller manager) installs it once; a process whose other
components build no queues (the scheduler) loses nothing by its being global. Without one a queue
keeps no metrics at all: the hot path then costs one ``is None`` test per add, get and done. With
one, each queue counts as client-go's ``defaultQueueMetrics`` does: ``depth`` is the number of
dirty keys (a key re-added while processed counts at once, though it is handed out only after
``done``), the queue latency runs from the first add to ``get``, the work duration from ``get``
to ``done``, and while keys are being processed the unfinished-work gauges are refreshed every
``UNFINISHED_WORK_UPDATE_PERIOD`` seconds on the queue's clock (upstream's 500 ms loop, run only
while there is unfinished work). Every ``add_after`` counts as a retry, as in client-go's delaying
queue.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from control.client.clock import REAL_CLOCK, Clock, Timer
from control.client.ratelimit import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)

UNFINISHED_WORK_UPDATE_PERIOD = 0.5  # seconds; client-go's defaultUnfinishedWorkUpdatePeriod


class CounterMetric(Protocol):
    def inc(self) -> None: ...


class GaugeMetric(Protocol):
    def inc(self) -> None: ...

    def dec(self) -> None: ...


class SettableGaugeMetric(Protocol):
    def set(self, value: float) -> None: ...


class HistogramMetric(Protocol):
    def observe(self, value: float) -> None: ...


class MetricsProvider(Protocol):
    """Makes one queue's metrics, given the queue's ``name`` (client-go's ``MetricsProvider``).

    Called once per queue when it is built; a queue re-made under the same name (a restarted
    controller) may get the same metric objects again and carry on counting.
    """

    def new_depth_metric(self, name: str) -> GaugeMetric: ...

    def new_adds_metric(self, name: str) -> CounterMetric: ...

    def new_latency_metric(self, name: str) -> HistogramMetric: ...

    def new_work_duration_metric(self, name: str) -> HistogramMetric: ...

    def new_unfinished_work_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_longest_running_processor_seconds_metric(self, name: str) -> SettableGaugeMetric: ...

    def new_retries_metric(self, name: str) -> CounterMetric: ...


_global_provider: MetricsProvider | None = None


def set_metrics_provider(provider: MetricsProvider | None) -> None:
    """Give every queue built from now on (without a ``metrics_provider`` of its own) metrics from
    ``provider``; ``None`` goes back to none. Queues built earlier keep what they had."""
    global _global_provider
    _global_provider = provider


class _QueueMetrics(Generic[T]):
    """One queue's metrics and the timestamps they are computed from (``defaultQueueMetrics``)."""

    __slots__ = (
        "_clock",
        "_timer",
        "add_times",
        "adds",
        "depth",
        "latency",
        "longest_running",
        "processing_starts",
        "unfinished_work",
        "work_duration",
    )

    def __init__(self, provider: MetricsProvider, *, name: str, clock: Clock) -> None:
        self._clock = clock
        self._timer: Timer | None = None
        self.depth = provider.new_depth_metric(name)
        self.adds = provider.new_adds_metric(name)
        self.latency = provider.new_latency_metric(name)
        self.work_duration = provider.new_work_duration_metric(name)
        self.unfinished_work = provider.new_unfinished_work_seconds_metric(name)
        self.longest_running = provider.new_longest_running_processor_seconds_metric(name)
        self.add_times: dict[T, float] = {}
        self.processing_starts: dict[T, float] = {}

    def add(self, item: T) -> None:
        self.adds.inc()
        self.depth.inc()
        if item not in self.add_times:
            self.add_times[item] = self._clock.now()

    def get(self, item: T) -> None:
        self.depth.dec()
        now = self._clock.now()
        self.processing_starts[item] = now
        added = self.add_times.pop(item, None)
        if added is not None:
            self.latency.observe(now - added)
        if self._timer is None:
            self._timer = self._clock.call_later(UNFINISHED_WORK_UPDATE_PERIOD, self._update_unfinished_work)

    def done(self, item: T) -> None:
        started = self.processing_starts.pop(item, None)
        if started is not None:
            self.work_duration.observe(self._clock.now() - started)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _update_unfinished_work(self) -> None:
        now = self._clock.now()
        total = oldest = 0.0
        for started in self.processing_starts.values():
            age = now - started
            total += age
            oldest = max(oldest, age)
        self.unfinished_work.set(total)
        self.longest_running.set(oldest)
        self._timer = (
            self._clock.call_later(UNFINISHED_WORK_UPDATE_PERIOD, self._update_unfinished_work)
            if self.processing_starts
            else None
        )


class QueueShutDown(Exception):
    """``get`` on a queue that is shut down and empty: the worker should exit."""


class WorkQueue(Generic[T]):
    """A deduplicating FIFO of keys with the dirty/processing discipline described above.

    ``name`` labels the queue's metrics (upstream's queue names: ``deployment``, ``replicaset``);
    ``metrics_provider`` defaults to the one :func:`set_metrics_provider` installed, if any.
    """

    def __init__(
        self, *, name: str = "", clock: Clock = REAL_CLOCK, metrics_provider: MetricsProvider | None = None
    ) -> None:
        self.name = name
        self._clock = clock
        provider = metrics_provider if metrics_provider is not None else _global_provider
        self._metrics: _QueueMetrics[T] | None = (
            None if provider is None else _QueueMetrics(provider, name=name, clock=clock)
        )
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
        if self._metrics is not None:
            self._metrics.add(item)
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
        if self._metrics is not None:
            self._metrics.get(item)
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: T) -> None:
        """``item`` is finished; if it was added again meanwhile, it is queued again now."""
        if self._metrics is not None:
            self._metrics.done(item)
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
        if self._metrics is not None:
            self._metrics.stop()
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

    def __init__(
        self, *, name: str = "", clock: Clock = REAL_CLOCK, metrics_provider: MetricsProvider | None = None
    ) -> None:
        super().__init__(name=name, clock=clock, metrics_provider=metrics_provider)
        provider = metrics_provider if metrics_provider is not None else _global_provider
        self._retries: CounterMetric | None = None if provider is None else provider.new_retries_metric(name)
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
        if self._retries is not None:
            self._retries.inc()
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
        self,
        rate_limiter: RateLimiter | None = None,
        *,
        name: str = "",
        clock: Clock = REAL_CLOCK,
        metrics_provider: MetricsProvider | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock, metrics_provider=metrics_provider)
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
