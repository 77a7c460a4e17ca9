"""CoreDNS's metrics, under CoreDNS's names and labels, so CoreDNS dashboards work unchanged.

Series (``server`` is ``dns://<bind>:<port>``, ``zone`` the server block's zone ``.``, ``view`` ""):

- ``coredns_dns_requests_total{server,zone,view,proto,family,type}``
- ``coredns_dns_responses_total{server,zone,view,rcode,plugin}``
- ``coredns_dns_request_duration_seconds{server,zone,view,type}`` (histogram)
- ``coredns_dns_request_size_bytes{server,zone,view,proto}`` / ``coredns_dns_response_size_bytes{...}``
- ``coredns_dns_do_requests_total{server,zone,view}``
- ``coredns_cache_entries{server,type,zones,view}``, ``coredns_cache_hits_total{server,type,zones,view}``,
  ``coredns_cache_misses_total{server,zones,view}``, ``coredns_cache_requests_total{server,zones,view}``
- ``coredns_forward_requests_total{to}``, ``coredns_forward_responses_total{to,rcode}``,
  ``coredns_proxy_request_duration_seconds{proxy_name,to,rcode}`` (histogram),
  ``coredns_forward_max_concurrent_rejects_total``
- ``coredns_panics_total``, ``coredns_reload_failed_total``, ``coredns_build_info{version,revision,goversion}``,
  ``coredns_plugin_enabled{server,zone,view,name}``

Counting on the hot path through prometheus-client's labelled metrics costs microseconds per
query (a lock and a label lookup per series), more than serving a cached answer. So queries are
counted in plain Python: one record per label combination, found with one dict lookup, holding
the count and non-cumulative histogram buckets. :class:`DNSCollector` turns the records into
metric families when Prometheus scrapes (the client_python pattern for state kept elsewhere).
The same records serialize to a snapshot, so with several worker processes the supervisor sums
the workers' snapshots into one ``/metrics``.
"""

from __future__ import annotations

import platform
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from addons.coredns_lite import wire

VERSION = "1.14.7-kubelab"  # the CoreDNS behaviour this follows
ZONE = "."
VIEW = ""
DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))  # CoreDNS's plugin.TimeBuckets
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3)
MONITORED_TYPES = {
    wire.A: "A",
    wire.AAAA: "AAAA",
    wire.CNAME: "CNAME",
    48: "DNSKEY",
    43: "DS",
    wire.MX: "MX",
    50: "NSEC3",
    47: "NSEC",
    wire.NS: "NS",
    wire.PTR: "PTR",
    46: "RRSIG",
    wire.SOA: "SOA",
    wire.SRV: "SRV",
    wire.TXT: "TXT",
    65: "HTTPS",
    64: "SVCB",
    wire.IXFR: "IXFR",
    wire.AXFR: "AXFR",
    wire.ANY: "ANY",
}


def type_label(qtype: int) -> str:
    return MONITORED_TYPES.get(qtype, "other")


def rcode_label(rcode: int) -> str:
    return wire.RCODE_NAMES.get(rcode, str(rcode))


# A query's labels: (server, proto, family, type, rcode, plugin, do).
QueryKey = tuple[str, str, str, str, str, str, bool]


class _Histogram:
    __slots__ = ("buckets", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * (size + 1)
        self.sum = 0.0


class _QueryRecord:
    __slots__ = ("count", "duration", "request", "response")

    def __init__(self) -> None:
        self.count = 0
        self.duration = _Histogram(len(DURATION_BUCKETS))
        self.request = _Histogram(len(SIZE_BUCKETS))
        self.response = _Histogram(len(SIZE_BUCKETS))


class DNSMetrics:
    """Everything the server counts. Methods are cheap enough for the per-query path."""

    def __init__(self) -> None:
        self.queries: dict[QueryKey, _QueryRecord] = {}
        self.cache_hits: dict[tuple[str, str], int] = {}  # (server, success|denial)
        self.cache_misses: dict[str, int] = {}  # server
        self.forward_requests: dict[str, int] = {}
        self.forward_responses: dict[tuple[str, str], list[Any]] = {}  # (to, rcode) -> [count, histogram]
        self.max_concurrent_rejects = 0
        self.panics = 0
        self.reload_failures = 0
        self.cache_entries: Callable[[], dict[str, int]] = dict
        self.servers: list[str] = []
        self.plugins: list[str] = []  # the Corefile's directives, for coredns_plugin_enabled

    # --- recording --------------------------------------------------------------------------------

    def observe(self, key: QueryKey, *, duration: float, request_size: int, response_size: int) -> None:
        record = self.queries.get(key)
        if record is None:
            record = self.queries[key] = _QueryRecord()
        record.count += 1
        histogram = record.duration
        histogram.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
        histogram.sum += duration
        histogram = record.request
        histogram.buckets[bisect_left(SIZE_BUCKETS, request_size)] += 1
        histogram.sum += request_size
        histogram = record.response
        histogram.buckets[bisect_left(SIZE_BUCKETS, response_size)] += 1
        histogram.sum += response_size

    def cache_hit(self, server: str, kind: str) -> None:
        key = (server, kind)
        self.cache_hits[key] = self.cache_hits.get(key, 0) + 1

    def cache_miss(self, server: str) -> None:
        self.cache_misses[server] = self.cache_misses.get(server, 0) + 1

    def forward_request(self, to: str) -> None:
        self.forward_requests[to] = self.forward_requests.get(to, 0) + 1

    def forward_response(self, to: str, rcode: int, duration: float) -> None:
        key = (to, rcode_label(rcode))
        entry = self.forward_responses.get(key)
        if entry is None:
            entry = self.forward_responses[key] = [0, _Histogram(len(DURATION_BUCKETS))]
        entry[0] += 1
        entry[1].buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
        entry[1].sum += duration

    # --- snapshots (worker processes) -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything counted so far as plain JSON-able data (see :func:`merge_snapshots`)."""
        return {
            "queries": [
                [list(key), r.count, _hist(r.duration), _hist(r.request), _hist(r.response)]
                for key, r in self.queries.items()
            ],
            "cache_hits": [[list(k), v] for k, v in self.cache_hits.items()],
            "cache_misses": [[k, v] for k, v in self.cache_misses.items()],
            "forward_requests": [[k, v] for k, v in self.forward_requests.items()],
            "forward_responses": [[list(k), v[0], _hist(v[1])] for k, v in self.forward_responses.items()],
            "max_concurrent_rejects": self.max_concurrent_rejects,
            "panics": self.panics,
            "reload_failures": self.reload_failures,
            "cache_entries": self.cache_entries(),
            "servers": self.servers,
            "plugins": self.plugins,
        }

    def add_snapshot(self, snapshot: dict[str, Any], *, gauges: bool = True) -> None:
        """Add a snapshot's counts to these (gauges too when ``gauges``)."""
        for key, count, duration, request, response in snapshot["queries"]:
            record = self.queries.get(tuple(key))  # type: ignore[arg-type]
            if record is None:
                record = self.queries[tuple(key)] = _QueryRecord()  # type: ignore[index]
            record.count += count
            _add_hist(record.duration, duration)
            _add_hist(record.request, request)
            _add_hist(record.response, response)
        for key, value in snapshot["cache_hits"]:
            self.cache_hits[tuple(key)] = self.cache_hits.get(tuple(key), 0) + value  # type: ignore[index,arg-type]
        for key, value in snapshot["cache_misses"]:
            self.cache_misses[key] = self.cache_misses.get(key, 0) + value
        for key, value in snapshot["forward_requests"]:
            self.forward_requests[key] = self.forward_requests.get(key, 0) + value
        for key, count, histogram in snapshot["forward_responses"]:
            entry = self.forward_responses.get(tuple(key))  # type: ignore[arg-type]
            if entry is None:
                entry = self.forward_responses[tuple(key)] = [0, _Histogram(len(DURATION_BUCKETS))]  # type: ignore[index]
            entry[0] += count
            _add_hist(entry[1], histogram)
        self.max_concurrent_rejects += snapshot["max_concurrent_rejects"]
        self.panics += snapshot["panics"]
        self.reload_failures += snapshot["reload_failures"]
        for server in snapshot["servers"]:
            if server not in self.servers:
                self.servers.append(server)
        for plugin in snapshot["plugins"]:
            if plugin not in self.plugins:
                self.plugins.append(plugin)
        if gauges:
            previous = self.cache_entries()
            entries = {k: previous.get(k, 0) + v for k, v in snapshot["cache_entries"].items()}
            self.cache_entries = lambda: entries


def _hist(histogram: _Histogram) -> list[Any]:
    return [histogram.buckets, histogram.sum]


def _add_hist(histogram: _Histogram, data: list[Any]) -> None:
    buckets, total = data
    for i, value in enumerate(buckets):
        histogram.buckets[i] += value
    histogram.sum += total


def _cumulative(histogram: _Histogram, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
    running = 0
    out = []
    for bound, count in zip((*bounds, float("inf")), histogram.buckets, strict=True):
        running += count
        out.append(("+Inf" if bound == float("inf") else _float_text(bound), running))
    return out


def _float_text(value: float) -> str:
    return repr(float(value))


class DNSCollector(Collector):
    """Reads a :class:`DNSMetrics` (or what ``source`` returns) at scrape time."""

    def __init__(self, source: Callable[[], DNSMetrics]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        m = self._source()
        requests = CounterMetricFamily(
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family.",
            labels=["server", "zone", "view", "proto", "family", "type"],
        )
        responses = CounterMetricFamily(
            "coredns_dns_responses",
            "Counter of response status codes.",
            labels=["server", "zone", "view", "rcode", "plugin"],
        )
        do_requests = CounterMetricFamily(
            "coredns_dns_do_requests",
            "Counter of DNS requests with DO bit set per zone.",
            labels=["server", "zone", "view"],
        )
        duration = HistogramMetricFamily(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            labels=["server", "zone", "view", "type"],
        )
        request_size = HistogramMetricFamily(
            "coredns_dns_request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            labels=["server", "zone", "view", "proto"],
        )
        response_size = HistogramMetricFamily(
            "coredns_dns_response_size_bytes",
            "Size of the returned response in bytes.",
            labels=["server", "zone", "view", "proto"],
        )
        sums: dict[str, dict[tuple[str, ...], Any]] = {
            "requests": {},
            "responses": {},
            "do": {},
            "duration": {},
            "request": {},
            "response": {},
        }
        for (server, proto, family, qtype, rcode, plugin, do), record in m.queries.items():
            _add_count(sums["requests"], (server, ZONE, VIEW, proto, family, qtype), record.count)
            _add_count(sums["responses"], (server, ZONE, VIEW, rcode, plugin), record.count)
            if do:
                _add_count(sums["do"], (server, ZONE, VIEW), record.count)
            _add_histogram(sums["duration"], (server, ZONE, VIEW, qtype), record.duration)
            _add_histogram(sums["request"], (server, ZONE, VIEW, proto), record.request)
            _add_histogram(sums["response"], (server, ZONE, VIEW, proto), record.response)
        for labels, value in sums["requests"].items():
            requests.add_metric(list(labels), value)
        for labels, value in sums["responses"].items():
            responses.add_metric(list(labels), value)
        for labels, value in sums["do"].items():
            do_requests.add_metric(list(labels), value)
        for family, key, bounds in (
            (duration, "duration", DURATION_BUCKETS),
            (request_size, "request", SIZE_BUCKETS),
            (response_size, "response", SIZE_BUCKETS),
        ):
            for labels, histogram in sums[key].items():
                family.add_metric(list(labels), _cumulative(histogram, bounds), histogram.sum)
        yield from (requests, responses, do_requests, duration, request_size, response_size)

        entries = GaugeMetricFamily(
            "coredns_cache_entries",
            "The number of elements in the cache.",
            labels=["server", "type", "zones", "view"],
        )
        hits = CounterMetricFamily(
            "coredns_cache_hits", "The count of cache hits.", labels=["server", "type", "zones", "view"]
        )
        misses = CounterMetricFamily(
            "coredns_cache_misses", "The count of cache misses.", labels=["server", "zones", "view"]
        )
        cache_requests = CounterMetricFamily(
            "coredns_cache_requests", "The count of cache requests.", labels=["server", "zones", "view"]
        )
        sizes = m.cache_entries()
        for server in m.servers:
            for kind in ("success", "denial"):
                entries.add_metric([server, kind, ZONE, VIEW], sizes.get(kind, 0))
        per_server: dict[str, int] = {}
        for (server, kind), value in m.cache_hits.items():
            hits.add_metric([server, kind, ZONE, VIEW], value)
            per_server[server] = per_server.get(server, 0) + value
        for server, value in m.cache_misses.items():
            misses.add_metric([server, ZONE, VIEW], value)
            per_server[server] = per_server.get(server, 0) + value
        for server, value in per_server.items():
            cache_requests.add_metric([server, ZONE, VIEW], value)
        yield from (entries, hits, misses, cache_requests)

        forward_requests = CounterMetricFamily(
            "coredns_forward_requests", "Counter of requests made per upstream.", labels=["to"]
        )
        forward_responses = CounterMetricFamily(
            "coredns_forward_responses", "Counter of responses received per upstream.", labels=["to", "rcode"]
        )
        proxy_duration = HistogramMetricFamily(
            "coredns_proxy_request_duration_seconds",
            "Histogram of the time each request took.",
            labels=["proxy_name", "to", "rcode"],
        )
        for to, value in m.forward_requests.items():
            forward_requests.add_metric([to], value)
        for (to, rcode), (count, histogram) in m.forward_responses.items():
            forward_responses.add_metric([to, rcode], count)
            proxy_duration.add_metric(
                ["forward", to, rcode], _cumulative(histogram, DURATION_BUCKETS), histogram.sum
            )
        rejects = CounterMetricFamily(
            "coredns_forward_max_concurrent_rejects",
            "Counter of the number of queries rejected because the concurrent queries were at maximum.",
        )
        rejects.add_metric([], m.max_concurrent_rejects)
        yield from (forward_requests, forward_responses, proxy_duration, rejects)

        panics = CounterMetricFamily("coredns_panics", "A metrics that counts the number of panics.")
        panics.add_metric([], m.panics)
        reloads = CounterMetricFamily(
            "coredns_reload_failed", "Counter of the number of failed reload attempts."
        )
        reloads.add_metric([], m.reload_failures)
        build = GaugeMetricFamily(
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            labels=["version", "revision", "goversion"],
        )
        build.add_metric([VERSION, "kubelab", f"python{platform.python_version()}"], 1)
        enabled = GaugeMetricFamily(
            "coredns_plugin_enabled",
            "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            labels=["server", "zone", "view", "name"],
        )
        for server in m.servers:
            for name in m.plugins:
                enabled.add_metric([server, ZONE, VIEW, name], 1)
        yield from (panics, reloads, build, enabled)


def _add_count(sums: dict[tuple[str, ...], Any], key: tuple[str, ...], value: int) -> None:
    sums[key] = sums.get(key, 0) + value


def _add_histogram(sums: dict[tuple[str, ...], Any], key: tuple[str, ...], histogram: _Histogram) -> None:
    total = sums.get(key)
    if total is None:
        total = sums[key] = _Histogram(len(histogram.buckets) - 1)
    for i, value in enumerate(histogram.buckets):
        total.buckets[i] += value
    total.sum += histogram.sum


def register(registry: CollectorRegistry, source: Callable[[], DNSMetrics]) -> DNSCollector:
    collector = DNSCollector(source)
    registry.register(collector)
    return collector
