"""The Prometheus side of the client library's metrics hooks: the exposition a scrape sees, with
upstream's names, labels, help texts and buckets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from control.client import workqueue
from control.client.config import ClientConfig
from control.client.testing import FakeClock
from control.client.workqueue import RateLimitingQueue
from control.controllers.metrics import (
    REST_CLIENT_BUCKETS,
    RESTClientMetrics,
    WorkqueueMetricsProvider,
    component_registry,
    install_workqueue_metrics,
    with_request_metrics,
)


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return samples(registry).get((metric, frozenset(labels.items())))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def hooks_reset() -> Iterator[None]:
    yield
    workqueue.set_metrics_provider(None)


async def test_a_queue_s_metrics_are_scraped_under_upstream_names(registry):
    provider = WorkqueueMetricsProvider(registry)
    clock = FakeClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(
        name="deployment", clock=clock, metrics_provider=provider
    )
    queue.add("default/web")
    queue.add("default/api")
    clock.advance(0.002)
    key = await queue.get()
    clock.advance(0.3)
    queue.done(key)
    queue.add_rate_limited("default/web")
    assert sample(registry, "workqueue_depth", name="deployment") == 1
    assert sample(registry, "workqueue_adds_total", name="deployment") == 2
    assert sample(registry, "workqueue_retries_total", name="deployment") == 1
    assert sample(registry, "workqueue_queue_duration_seconds_count", name="deployment") == 1
    assert sample(registry, "workqueue_queue_duration_seconds_sum", name="deployment") == pytest.approx(0.002)
    assert sample(registry, "workqueue_queue_duration_seconds_bucket", name="deployment", le="0.001") == 0
    assert sample(registry, "workqueue_queue_duration_seconds_bucket", name="deployment", le="0.01") == 1
    assert sample(registry, "workqueue_queue_duration_seconds_bucket", name="deployment", le="+Inf") == 1
    assert sample(registry, "workqueue_work_duration_seconds_sum", name="deployment") == pytest.approx(0.3)
    assert sample(registry, "workqueue_work_duration_seconds_bucket", name="deployment", le="0.1") == 0
    assert sample(registry, "workqueue_work_duration_seconds_bucket", name="deployment", le="1.0") == 1
    assert sample(registry, "workqueue_unfinished_work_seconds", name="deployment") == 0
    assert sample(registry, "workqueue_longest_running_processor_seconds", name="deployment") == 0
    queue.shutdown()


def test_histograms_have_upstream_s_ten_buckets_and_boundaries_are_inclusive(registry):
    provider = WorkqueueMetricsProvider(registry)
    provider.new_work_duration_metric("q").observe(1e-5)  # exactly a boundary: counted in its bucket
    provider.new_work_duration_metric("q").observe(50.0)  # past the last: only +Inf
    buckets = {
        labels["le"]: value
        for (name, label_set), value in samples(registry).items()
        if name == "workqueue_work_duration_seconds_bucket"
        for labels in [dict(label_set)]
    }
    assert list(buckets) == [
        "1e-08", "1e-07", "1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf"
    ]  # fmt: skip
    assert buckets["1e-06"] == 0
    assert buckets["1e-05"] == 1
    assert buckets["10.0"] == 1
    assert buckets["+Inf"] == 2


def test_a_name_asked_for_again_continues_the_same_series(registry):
    provider = WorkqueueMetricsProvider(registry)
    provider.new_adds_metric("replicaset").inc()
    provider.new_adds_metric("replicaset").inc()
    provider.new_retries_metric("replicaset").inc()
    provider.new_retries_metric("replicaset").inc()
    assert sample(registry, "workqueue_adds_total", name="replicaset") == 2
    assert sample(registry, "workqueue_retries_total", name="replicaset") == 2


def test_queues_without_retries_have_no_retries_series(registry):
    provider = WorkqueueMetricsProvider(registry)
    provider.new_depth_metric("plain")
    assert sample(registry, "workqueue_depth", name="plain") == 0
    assert not [key for key in samples(registry) if key[0] == "workqueue_retries_total"]


def test_rest_client_metrics_have_upstream_labels_and_buckets(registry):
    metrics = RESTClientMetrics(registry).request_metrics
    metrics.result.increment(code="201", method="POST", host="127.0.0.1:6443")
    metrics.result.increment(code="201", method="POST", host="127.0.0.1:6443")
    metrics.result.increment(code="<error>", method="GET", host="127.0.0.1:6443")
    metrics.latency.observe(verb="POST", host="127.0.0.1:6443", seconds=0.02)
    assert (
        sample(registry, "rest_client_requests_total", code="201", method="POST", host="127.0.0.1:6443") == 2
    )
    assert (
        sample(registry, "rest_client_requests_total", code="<error>", method="GET", host="127.0.0.1:6443")
        == 1
    )
    count = sample(registry, "rest_client_request_duration_seconds_count", verb="POST", host="127.0.0.1:6443")
    assert count == 1
    boundaries = {
        float(dict(labels)["le"])
        for name, labels in samples(registry)
        if name == "rest_client_request_duration_seconds_bucket"
    }
    assert boundaries == {*REST_CLIENT_BUCKETS, float("inf")}


def test_the_component_registry_has_the_process_and_python_collectors():
    names = {name for name, _ in samples(component_registry())}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert any(name.startswith("python_gc_") for name in names)


async def test_installing_points_the_workqueue_hook_at_the_registry(registry, hooks_reset):
    install_workqueue_metrics(registry)
    queue: RateLimitingQueue[str] = RateLimitingQueue(name="endpoint", clock=FakeClock())
    queue.add("default/web")
    assert sample(registry, "workqueue_adds_total", name="endpoint") == 1
    assert not [key for key in samples(registry) if key[0].startswith("rest_client_")]
    queue.shutdown()


def test_a_configuration_with_request_metrics_counts_into_its_registry_only(registry):
    config = ClientConfig(server="https://127.0.0.1:6443", token="s3cret")
    other = CollectorRegistry()
    counted = with_request_metrics(config, registry=registry)
    with_request_metrics(config, registry=other)
    assert config.request_metrics is None  # the original is left as it was
    assert counted == config  # the sink is not part of a configuration's identity
    assert counted.request_metrics is not None
    counted.request_metrics.result.increment(code="200", method="GET", host="h:1")
    assert sample(registry, "rest_client_requests_total", code="200", method="GET", host="h:1") == 1
    assert sample(other, "rest_client_requests_total", code="200", method="GET", host="h:1") is None


def test_one_registry_takes_request_metrics_once(registry):
    config = ClientConfig(server="https://127.0.0.1:6443")
    with_request_metrics(config, registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        with_request_metrics(config, registry=registry)
