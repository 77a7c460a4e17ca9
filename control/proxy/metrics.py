"""The proxy's Prometheus metrics: kube-proxy's sync metrics, plus what the proxy is carrying.

Where kube-proxy has a metric the name is upstream's (``pkg/proxy/metrics``):
``kubeproxy_sync_proxy_rules_duration_seconds``, ``..._last_timestamp_seconds``,
``..._service_changes_total`` and ``..._endpoint_changes_total``. The rest is specific to a
userspace proxy and prefixed ``kubelab_proxy_``.

Forwarding is a hot path, so it does not touch prometheus-client objects (each ``inc`` takes
a lock): it bumps plain integers in :class:`Counts`, and a collector reads those and the
proxier's current state (listeners, open connections and flows) when Prometheus scrapes.
Everything registers in the ``CollectorRegistry`` given, so each proxy — and each test — has
its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(slots=True)
class Counts:
    """Event counters bumped on the forwarding paths; exported at scrape time."""

    tcp_forwarded: int = 0  # connections relayed to a backend
    tcp_failed: int = 0  # connections reset because no backend accepted them
    udp_flows: int = 0  # UDP flows opened
    udp_dropped: int = 0  # datagrams dropped: no backend, or a full socket buffer
    listen_errors: int = 0  # listeners that could not be opened


class ProxierState(Protocol):
    """What the collector reads from the proxier at scrape time."""

    def listener_count(self, protocol: str) -> int: ...

    @property
    def tcp_connections(self) -> int: ...

    @property
    def udp_flows(self) -> int: ...


class ProxyMetrics:
    """The proxy's metrics in ``registry``; ``counts`` and ``state`` are read at scrape time."""

    def __init__(self, registry: CollectorRegistry, *, counts: Counts, state: ProxierState) -> None:
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            buckets=[0.001 * 2**i for i in range(15)],
            registry=registry,
        )
        self.last_sync = Gauge(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            registry=registry,
        )
        self.service_changes = Counter(
            "kubeproxy_sync_proxy_rules_service_changes",
            "Cumulative proxy rules Service changes",
            registry=registry,
        )
        self.endpoint_changes = Counter(
            "kubeproxy_sync_proxy_rules_endpoint_changes",
            "Cumulative proxy rules Endpoint changes",
            registry=registry,
        )
        registry.register(_StateCollector(counts, state))


class _StateCollector(Collector):
    def __init__(self, counts: Counts, state: ProxierState) -> None:
        self._counts = counts
        self._state = state

    def collect(self) -> Iterator[Metric]:
        counts = self._counts
        listeners = GaugeMetricFamily(
            "kubelab_proxy_listeners", "Service addresses the proxy listens on", labels=["protocol"]
        )
        for protocol in ("TCP", "UDP"):
            listeners.add_metric([protocol], self._state.listener_count(protocol))
        yield listeners
        yield GaugeMetricFamily(
            "kubelab_proxy_open_tcp_connections",
            "TCP connections being relayed",
            value=self._state.tcp_connections,
        )
        yield GaugeMetricFamily("kubelab_proxy_open_udp_flows", "UDP flows open", value=self._state.udp_flows)
        relayed = CounterMetricFamily(
            "kubelab_proxy_tcp_connections", "TCP connections accepted, by outcome", labels=["result"]
        )
        relayed.add_metric(["forwarded"], counts.tcp_forwarded)
        relayed.add_metric(["failed"], counts.tcp_failed)
        yield relayed
        yield CounterMetricFamily("kubelab_proxy_udp_flows", "UDP flows opened", value=counts.udp_flows)
        yield CounterMetricFamily(
            "kubelab_proxy_udp_datagrams_dropped",
            "Datagrams dropped for want of a backend or of socket buffer space",
            value=counts.udp_dropped,
        )
        yield CounterMetricFamily(
            "kubelab_proxy_listen_errors", "Listeners that could not be opened", value=counts.listen_errors
        )
