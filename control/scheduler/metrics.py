"""The scheduler's Prometheus metrics, with kube-scheduler's names and labels.

- ``scheduler_schedule_attempts_total{result,profile}`` — attempts by result: ``scheduled``,
  ``unschedulable`` (no node fits) or ``error``;
- ``scheduler_scheduling_attempt_duration_seconds{result,profile}`` — from taking the pod off the
  queue to the binding's answer (or to the failure), upstream's buckets (1 ms doubling, 15);
- ``scheduler_pod_scheduling_attempts`` — attempts a pod needed until it was scheduled;
- ``scheduler_pending_pods{queue}`` — pods in ``active``, ``backoff``, ``unschedulable`` and
  ``gated``, read from the queue at scrape time (a custom collector, not a gauge kept in step).

Everything lives in the registry passed in, so tests and several schedulers in one process do
not collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PROFILE = "default-scheduler"
SCHEDULED = "scheduled"
UNSCHEDULABLE = "unschedulable"
ERROR = "error"

_ATTEMPT_BUCKETS = tuple(0.001 * 2**i for i in range(15))
_ATTEMPTS_BUCKETS = (1, 2, 4, 8, 16)


class _PendingPods(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' "
            "means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that "
            "the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that "
            "the scheduler never attempted to schedule because they are gated.",
            labels=("queue",),
        )
        for queue, count in self._counts().items():
            family.add_metric((queue,), count)
        yield family


class SchedulerMetrics:
    def __init__(self, *, registry: CollectorRegistry, pending: Callable[[], Mapping[str, int]]) -> None:
        self.registry = registry
        self.attempts = Counter(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be "
            "scheduled, while 'error' means an internal scheduler problem.",
            ("result", "profile"),
            registry=registry,
        )
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            ("result", "profile"),
            buckets=_ATTEMPT_BUCKETS,
            registry=registry,
        )
        self.pod_attempts = Histogram(
            "scheduler_pod_scheduling_attempts",
            "Number of attempts to successfully schedule a pod.",
            buckets=_ATTEMPTS_BUCKETS,
            registry=registry,
        )
        self._pending = _PendingPods(pending)
        registry.register(self._pending)

    def attempt(self, result: str, seconds: float) -> None:
        self.attempts.labels(result, PROFILE).inc()
        self.attempt_duration.labels(result, PROFILE).observe(seconds)

    def unregister(self) -> None:
        """Remove every metric from the registry (the scheduler is being replaced)."""
        for collector in (self.attempts, self.attempt_duration, self.pod_attempts, self._pending):
            self.registry.unregister(collector)
