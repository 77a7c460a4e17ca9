"""The API server's Prometheus metrics, with kube-apiserver's names and labels.

Dashboards and alerts written for kube-apiserver work unchanged:
``apiserver_request_total{verb,group,version,resource,subresource,scope,component,code}``,
``apiserver_request_duration_seconds`` (same labels minus code, upstream's buckets),
``apiserver_registered_watchers{group,version,kind}``, ``apiserver_longrunning_requests``,
``apiserver_storage_objects{resource}`` (read from the store at scrape time, as a custom
collector, not mutated on every write) and ``etcd_request_duration_seconds{operation,type}``
for store calls. Every metric lives in the registry passed in, so tests use a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# kube-apiserver's apiserver_request_duration_seconds buckets.
_REQUEST_BUCKETS = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2,
    3,
    4,
    5,
    6,
    8,
    10,
    15,
    20,
    30,
    45,
    60,
)


class APIServerMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._request_children: dict[tuple[tuple[str, ...], int], Any] = {}
        self._duration_children: dict[tuple[str, ...], Any] = {}
        labels = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
        self.requests = Counter(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, "
            "resource, scope, component, and HTTP response code.",
            (*labels, "code"),
            registry=registry,
        )
        self.request_duration = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, "
            "resource, subresource, scope and component.",
            labels,
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.registered_watchers = Gauge(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources",
            ("group", "version", "kind"),
            registry=registry,
        )
        self.longrunning = Gauge(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, "
            "resource, scope and component.",
            ("verb", "group", "version", "resource", "subresource", "scope", "component"),
            registry=registry,
        )
        self.storage_requests = Histogram(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            ("operation", "type"),
            registry=registry,
        )

    def observe_request(self, labels: tuple[str, ...], *, code: int, seconds: float | None) -> None:
        """Count one request (and its latency unless long-running). ``labels`` are the
        duration histogram's, in order. Label children are cached: ``labels()`` is slow
        next to the rest of a request."""
        counter = self._request_children.get((labels, code))
        if counter is None:
            counter = self.requests.labels(*labels, str(code))
            self._request_children[(labels, code)] = counter
        counter.inc()
        if seconds is None:
            return
        histogram = self._duration_children.get(labels)
        if histogram is None:
            histogram = self.request_duration.labels(*labels)
            self._duration_children[labels] = histogram
        histogram.observe(seconds)


class StorageObjectsCollector(Collector):
    """``apiserver_storage_objects{resource}``: counted from the store's latest counts.

    Scrapes are synchronous, store reads are async: the server refreshes the counts in
    the background (``refresh``) and the collector reports the last known values.
    """

    def __init__(
        self,
        *,
        resources: Callable[[], Iterable[tuple[str, str]]],
        count: Callable[[str], asyncio.Future[int]],
    ) -> None:
        self._resources = resources
        self._count = count
        self._last: dict[str, int] = {}

    async def refresh(self) -> None:
        fresh: dict[str, int] = {}
        for name, prefix in self._resources():
            fresh[name] = await self._count(prefix)
        self._last = fresh

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            labels=("resource",),
        )
        for name, value in sorted(self._last.items()):
            family.add_metric((name,), value)
        yield family
