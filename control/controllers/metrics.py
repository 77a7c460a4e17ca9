"""The control-plane components' client metrics: what k8s.io/component-base registers for
kube-controller-manager and kube-scheduler, on prometheus-client.

The client library only defines seams — :class:`control.client.workqueue.MetricsProvider` and
:class:`control.client.rest.RequestMetrics` — so it never imports a component's registry
(client-go's ``workqueue.SetProvider`` and ``metrics.Register``). This module fills them:

- :class:`WorkqueueMetricsProvider` (component-base's ``metrics/prometheus/workqueue``):
  ``workqueue_depth``, ``workqueue_adds_total``, ``workqueue_queue_duration_seconds``,
  ``workqueue_work_duration_seconds``, ``workqueue_unfinished_work_seconds``,
  ``workqueue_longest_running_processor_seconds`` and ``workqueue_retries_total``, each labelled
  ``name`` with the queue's name; the two histograms have upstream's buckets, 10 ns times powers
  of ten up to 10 s;
- :class:`RESTClientMetrics` (``metrics/prometheus/restclient``):
  ``rest_client_requests_total{code,method,host}`` and
  ``rest_client_request_duration_seconds{verb,host}`` with upstream's buckets.

:func:`component_registry` makes one component's registry, with the process, platform (Python) and
garbage-collector collectors. Each component has its own, served on its own port (the controller
manager's 10257, the scheduler's 10259), even when both run in one process:

- :func:`with_request_metrics` gives a client configuration a sink counting into one registry;
  every client made from that configuration (and from configurations derived from it, such as the
  controllers' ServiceAccount clients) counts there, and no other component's does;
- :func:`install_workqueue_metrics` points the process-wide workqueue provider at one registry:
  the controllers build their own queues, so that hook stays global, and only the controller
  manager installs it (the scheduler builds no workqueues).

Everything lives in the registry passed in, so tests use a fresh one each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from control.client import rest, workqueue
from control.client.config import ClientConfig

# prometheus.ExponentialBuckets(10e-9, 10, 10): 10 ns .. 10 s
WORKQUEUE_BUCKETS = tuple(10e-9 * 10**power for power in range(10))
_BUCKET_LABELS = (*(floatToGoString(bound) for bound in WORKQUEUE_BUCKETS), "+Inf")
REST_CLIENT_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class _Value:
    """A counter's or gauge's value; plain arithmetic, read when scraped."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self) -> None:
        self.value += 1.0

    def dec(self) -> None:
        self.value -= 1.0

    def set(self, value: float) -> None:
        self.value = value


class _Histogram:
    """Per-bucket (not cumulative) counts and the sum; the last count is the +Inf bucket."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(WORKQUEUE_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(WORKQUEUE_BUCKETS, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets = []
        total = 0
        for bound, count in zip(_BUCKET_LABELS, self.counts, strict=True):
            total += count
            buckets.append((bound, total))
        return buckets


@dataclass(slots=True)
class _QueueSeries:
    depth: _Value = field(default_factory=_Value)
    adds: _Value = field(default_factory=_Value)
    latency: _Histogram = field(default_factory=_Histogram)
    work_duration: _Histogram = field(default_factory=_Histogram)
    unfinished_work: _Value = field(default_factory=_Value)
    longest_running: _Value = field(default_factory=_Value)
    retries: _Value | None = None


class WorkqueueMetricsProvider(Collector):
    """Each queue's metrics, labelled with its name, as a collector registered in ``registry``.

    The workqueue is on every controller's path, so its metrics are plain attributes bumped
    without locks (the queues and the scrape share one event loop thread) and turned into
    metric families only when scraped; prometheus-client's own metric objects take a lock per
    update and cost several times more. A name asked for twice gets the same series.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._queues: dict[str, _QueueSeries] = {}
        registry.register(self)

    def _series(self, name: str) -> _QueueSeries:
        series = self._queues.get(name)
        if series is None:
            series = self._queues[name] = _QueueSeries()
        return series

    def new_depth_metric(self, name: str) -> workqueue.GaugeMetric:
        return self._series(name).depth

    def new_adds_metric(self, name: str) -> workqueue.CounterMetric:
        return self._series(name).adds

    def new_latency_metric(self, name: str) -> workqueue.HistogramMetric:
        return self._series(name).latency

    def new_work_duration_metric(self, name: str) -> workqueue.HistogramMetric:
        return self._series(name).work_duration

    def new_unfinished_work_seconds_metric(self, name: str) -> workqueue.SettableGaugeMetric:
        return self._series(name).unfinished_work

    def new_longest_running_processor_seconds_metric(self, name: str) -> workqueue.SettableGaugeMetric:
        return self._series(name).longest_running

    def new_retries_metric(self, name: str) -> workqueue.CounterMetric:
        series = self._series(name)
        if series.retries is None:
            series.retries = _Value()
        return series.retries

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=("name",))
        adds = CounterMetricFamily(
            "workqueue_adds", "Total number of adds handled by workqueue", labels=("name",)
        )
        latency = HistogramMetricFamily(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            labels=("name",),
        )
        work_duration = HistogramMetricFamily(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            labels=("name",),
        )
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads "
            "by observing the rate at which this increases.",
            labels=("name",),
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=("name",),
        )
        retries = CounterMetricFamily(
            "workqueue_retries", "Total number of retries handled by workqueue", labels=("name",)
        )
        for name, series in sorted(self._queues.items()):
            depth.add_metric((name,), series.depth.value)
            adds.add_metric((name,), series.adds.value)
            latency.add_metric((name,), series.latency.cumulative(), series.latency.sum)
            work_duration.add_metric((name,), series.work_duration.cumulative(), series.work_duration.sum)
            unfinished.add_metric((name,), series.unfinished_work.value)
            longest.add_metric((name,), series.longest_running.value)
            if series.retries is not None:
                retries.add_metric((name,), series.retries.value)
        yield from (depth, adds, latency, work_duration, unfinished, longest, retries)


class _Latency:
    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._children: dict[tuple[str, str], Histogram] = {}

    def observe(self, *, verb: str, host: str, seconds: float) -> None:
        child = self._children.get((verb, host))
        if child is None:
            child = self._children[verb, host] = self._histogram.labels(verb, host)
        child.observe(seconds)


class _Result:
    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, str, str], Counter] = {}

    def increment(self, *, code: str, method: str, host: str) -> None:
        child = self._children.get((code, method, host))
        if child is None:
            child = self._children[code, method, host] = self._counter.labels(code, method, host)
        child.inc()


class RESTClientMetrics:
    """``rest_client_requests_total`` and ``rest_client_request_duration_seconds`` in ``registry``,
    as a :class:`control.client.rest.RequestMetrics` (label children cached per combination)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.request_metrics = rest.RequestMetrics(
            latency=_Latency(
                Histogram(
                    "rest_client_request_duration_seconds",
                    "Request latency in seconds. Broken down by verb, and host.",
                    ("verb", "host"),
                    buckets=REST_CLIENT_BUCKETS,
                    registry=registry,
                )
            ),
            result=_Result(
                Counter(
                    "rest_client_requests",
                    "Number of HTTP requests, partitioned by status code, method, and host.",
                    ("code", "method", "host"),
                    registry=registry,
                )
            ),
        )


def component_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and garbage-collector collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def with_request_metrics(config: ClientConfig, *, registry: CollectorRegistry) -> ClientConfig:
    """``config`` with the API requests of every client made from it counted in ``registry``
    (``rest_client_*``; once per registry, whose metric names can be registered only once)."""
    return replace(config, request_metrics=RESTClientMetrics(registry).request_metrics)


def install_workqueue_metrics(registry: CollectorRegistry) -> None:
    """Count every workqueue built from now on in ``registry`` (``workqueue_*``; once per process:
    the hook is process-wide, as client-go's ``workqueue.SetProvider``)."""
    workqueue.set_metrics_provider(WorkqueueMetricsProvider(registry))
