"""The scheduling queue: pods waiting to be scheduled, in three places, as upstream's PriorityQueue.

- **activeQ** — pods ready to be tried, highest ``spec.priority`` first, then oldest first.
  :meth:`SchedulingQueue.pop` waits for one.
- **backoffQ** — pods that failed recently, waiting out their backoff: 1 s after the first
  attempt, doubling with each attempt up to 10 s (``podInitialBackoffSeconds``,
  ``podMaxBackoffSeconds``). A timer moves each to activeQ when its backoff expires.
- **unschedulable pods** — pods no node could take. Retrying them is pointless until the
  cluster changes, so they wait for a cluster event (:meth:`SchedulingQueue.move`): a node added
  or changed, an assigned pod added, changed or deleted. Each failed pod remembers which filter
  plugins rejected it and an event only moves pods it may help (upstream's queueing hints, in
  the coarse form of its ``EventsToRegister``); a pod rejected for no plugin's reason (no nodes
  at all) moves on any event. A moved pod still inside its backoff goes to backoffQ. As a safety
  net, pods left unschedulable for five minutes are retried anyway.

Pods with ``schedulingGates`` are held apart (upstream's gated pods) until an update removes
the gates. The queue holds keys and a little bookkeeping; the scheduler reads the pod itself
from its informer when it pops the key, so an update never needs to touch the queue unless it
can change the pod's fate. Time comes from an injectable clock, so backoff is testable without
waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

from control.client.clock import REAL_CLOCK, Clock, Timer

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_DURATION = 300.0
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0


class QueueClosed(Exception):
    """``pop`` on a closed queue: the scheduler is stopping."""


@dataclass(slots=True)
class QueuedPod:
    """A pending pod's place in the queue. ``attempts`` counts scheduling attempts so far."""

    key: str
    priority: int
    timestamp: float
    attempts: int = 0
    rejected_by: frozenset[str] = field(default_factory=frozenset)


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Clock = REAL_CLOCK,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_unschedulable_duration: float = MAX_UNSCHEDULABLE_DURATION,
    ) -> None:
        if not 0 < initial_backoff <= max_backoff:
            raise ValueError(f"backoff must satisfy 0 < initial ({initial_backoff}) <= max ({max_backoff})")
        self._clock = clock
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_unschedulable = max_unschedulable_duration
        self._sequence = itertools.count()
        self._active: dict[str, tuple[int, float, int, str]] = {}
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._backoff: dict[str, tuple[float, int, str]] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._gated: dict[str, QueuedPod] = {}
        self._pods: dict[str, QueuedPod] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._backoff_timer: tuple[float, Timer] | None = None
        self._leftover_timer: Timer = clock.call_later(UNSCHEDULABLE_FLUSH_INTERVAL, self._flush_leftovers)

    # --- informational --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Pods per sub-queue (``active``, ``backoff``, ``unschedulable``, ``gated``): for metrics and tests."""
        return {
            "active": len(self._active),
            "backoff": len(self._backoff),
            "unschedulable": len(self._unschedulable),
            "gated": len(self._gated),
        }

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def backoff_duration(self, attempts: int) -> float:
        """1 s for the first attempt, doubling per attempt, at most the maximum (upstream's formula)."""
        duration = self._initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self._max_backoff:
                return self._max_backoff
        return duration

    # --- informer-driven changes ----------------------------------------------------------------

    def add(self, key: str, *, priority: int = 0, gated: bool = False) -> None:
        """A new pending pod (ignored if already queued)."""
        if key in self._pods or self._closed:
            return
        pod = QueuedPod(key, priority, self._clock.now())
        self._pods[key] = pod
        if gated:
            self._gated[key] = pod
        else:
            self._push_active(pod)

    def update(self, key: str, *, priority: int = 0, gated: bool = False, spec_changed: bool = False) -> None:
        """A pending pod changed. A change beyond its status gives an unschedulable pod another try."""
        pod = self._pods.get(key)
        if pod is None:
            self.add(key, priority=priority, gated=gated)
            return
        if key in self._gated:
            if not gated:
                del self._gated[key]
                pod.priority = priority
                self._push_active(pod)
            return
        if key in self._active and priority != pod.priority:
            pod.priority = priority
            self._push_active(pod)
        elif key in self._unschedulable and spec_changed:
            pod.priority = priority
            self._move_out_of_unschedulable(pod)

    def delete(self, key: str) -> None:
        """The pod is gone, bound, or no longer ours."""
        self._pods.pop(key, None)
        self._active.pop(key, None)
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        self._gated.pop(key, None)

    def move(self, plugins: frozenset[str] | None) -> int:
        """A cluster event that may help pods rejected by ``plugins`` (``None``: any pod). Returns how many moved."""
        moved = [
            pod
            for pod in self._unschedulable.values()
            if plugins is None or not pod.rejected_by or pod.rejected_by & plugins
        ]
        for pod in moved:
            self._move_out_of_unschedulable(pod)
        return len(moved)

    # --- the scheduling loop's side -------------------------------------------------------------

    async def pop(self) -> QueuedPod:
        """The next pod to schedule, waiting for one. Raises :class:`QueueClosed` once closed."""
        while True:
            if self._closed:
                raise QueueClosed()
            while self._active_heap:
                entry = heapq.heappop(self._active_heap)
                key = entry[3]
                if self._active.get(key) is entry:
                    del self._active[key]
                    pod = self._pods.pop(key)
                    pod.attempts += 1
                    return pod
            self._wakeup.clear()
            await self._wakeup.wait()

    def requeue_unschedulable(self, pod: QueuedPod, *, rejected_by: frozenset[str]) -> None:
        """A popped pod that fits nowhere: park it until a cluster event that may help."""
        if pod.key in self._pods or self._closed:
            return  # re-added by an update meanwhile: that entry wins
        pod.timestamp = self._clock.now()
        pod.rejected_by = rejected_by
        self._pods[pod.key] = pod
        self._unschedulable[pod.key] = pod

    def requeue_backoff(self, pod: QueuedPod) -> None:
        """A popped pod whose attempt failed for another reason (an error, a failed binding): retry after backoff."""
        if pod.key in self._pods or self._closed:
            return
        pod.timestamp = self._clock.now()
        pod.rejected_by = frozenset()
        self._pods[pod.key] = pod
        self._push_backoff(pod)

    def close(self) -> None:
        """Stop: wake every ``pop`` (which raises :class:`QueueClosed`) and cancel the timers."""
        self._closed = True
        self._wakeup.set()
        self._leftover_timer.cancel()
        if self._backoff_timer is not None:
            self._backoff_timer[1].cancel()
            self._backoff_timer = None

    # --- internals ------------------------------------------------------------------------------

    def _expiry(self, pod: QueuedPod) -> float:
        return pod.timestamp + self.backoff_duration(pod.attempts)

    def _push_active(self, pod: QueuedPod) -> None:
        entry = (-pod.priority, pod.timestamp, next(self._sequence), pod.key)
        self._active[pod.key] = entry
        heapq.heappush(self._active_heap, entry)
        self._wakeup.set()

    def _push_backoff(self, pod: QueuedPod) -> None:
        expiry = self._expiry(pod)
        entry = (expiry, next(self._sequence), pod.key)
        self._backoff[pod.key] = entry
        heapq.heappush(self._backoff_heap, entry)
        self._arm_backoff_timer(expiry)

    def _move_out_of_unschedulable(self, pod: QueuedPod) -> None:
        del self._unschedulable[pod.key]
        if self._clock.now() < self._expiry(pod):
            self._push_backoff(pod)
        else:
            self._push_active(pod)

    def _arm_backoff_timer(self, expiry: float) -> None:
        if self._closed:
            return
        if self._backoff_timer is not None:
            if self._backoff_timer[0] <= expiry:
                return
            self._backoff_timer[1].cancel()
        delay = max(expiry - self._clock.now(), 0.0)
        self._backoff_timer = (expiry, self._clock.call_later(delay, self._flush_backoff))

    def _flush_backoff(self) -> None:
        """Move every pod whose backoff expired to activeQ, then wait for the next expiry."""
        self._backoff_timer = None
        now = self._clock.now()
        while self._backoff_heap:
            expiry, _, key = self._backoff_heap[0]
            if self._backoff.get(key) is not self._backoff_heap[0]:
                heapq.heappop(self._backoff_heap)  # stale: the pod left backoffQ
                continue
            if expiry > now:
                self._arm_backoff_timer(expiry)
                return
            heapq.heappop(self._backoff_heap)
            del self._backoff[key]
            self._push_active(self._pods[key])

    def _flush_leftovers(self) -> None:
        """Retry pods unschedulable for longer than the maximum, whatever happened meanwhile."""
        now = self._clock.now()
        for pod in [p for p in self._unschedulable.values() if now - p.timestamp > self._max_unschedulable]:
            self._move_out_of_unschedulable(pod)
        if not self._closed:
            self._leftover_timer = self._clock.call_later(UNSCHEDULABLE_FLUSH_INTERVAL, self._flush_leftovers)
