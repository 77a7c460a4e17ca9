"""The shapes of /stats/summary and /metrics/resource, from pods and usage numbers (the
endpoints themselves are tested in test_server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from control.kubelet.summary import (
    Usage,
    boot_time,
    resource_metrics,
    running_containers,
    runtime_container_id,
    summary,
)
from tests.control.kubelet.fakes import FakeUsage, make_pod


def test_runtime_container_id() -> None:
    assert runtime_container_id("kubelab://abc") == "abc"
    assert runtime_container_id("containerd://x://y") == "x://y"
    assert runtime_container_id("bare") == "bare"


def test_running_containers_include_running_init_containers_only() -> None:
    pod: dict[str, Any] = make_pod("p", containers=("app", "waiting"), running={"app": "app-id"})
    pod["status"]["initContainerStatuses"] = [
        {"name": "setup", "containerID": "kubelab://init-id", "state": {"running": {"startedAt": "t"}}},
        {"name": "done", "containerID": "kubelab://old", "state": {"terminated": {"exitCode": 0}}},
    ]
    found = running_containers([pod])
    assert [(c.name, c.container_id) for c in found] == [("setup", "init-id"), ("app", "app-id")]
    assert found[1].started_at == "2026-11-25T10:00:00Z"
    assert running_containers([{"metadata": {}, "status": {}}, {}]) == []


def test_boot_time(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nbtime 1764000000\nprocesses 5\n")
    assert boot_time(stat) == 1764000000.0
    stat.write_text("cpu  1 2 3\n")
    with pytest.raises(ValueError, match="no btime line"):
        boot_time(stat)
    assert boot_time() > 0  # this machine's


def test_pod_totals_leave_out_rates_some_containers_lack() -> None:
    pod = make_pod("p", containers=("a", "b"), running={"a": "a-id", "b": "b-id"})
    usage = FakeUsage(
        node=None,
        containers={
            "a-id": Usage(timestamp=10, cpu_core_nanoseconds=5, memory_working_set_bytes=7, cpu_nano_cores=3),
            "b-id": Usage(timestamp=20, cpu_core_nanoseconds=1, memory_working_set_bytes=2),
        },
    )
    (stats,) = summary(node_name="n", start_time=0, pods=[pod], usage=usage)["pods"]
    assert stats["cpu"] == {"time": "1970-01-01T00:00:20Z", "usageCoreNanoSeconds": 6}
    assert stats["memory"] == {"time": "1970-01-01T00:00:20Z", "workingSetBytes": 9}
    assert stats["containers"][0]["cpu"]["usageNanoCores"] == 3


def test_label_values_are_escaped() -> None:
    pod = make_pod('we"ird', containers=("c\\1",), running={"c\\1": "id"})
    usage = FakeUsage(
        node=None, containers={"id": Usage(timestamp=1, cpu_core_nanoseconds=1, memory_working_set_bytes=1)}
    )
    text = resource_metrics(pods=[pod], usage=usage).decode()
    assert 'container="c\\\\1",namespace="default",pod="we\\"ird"' in text
    (sample,) = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "container_cpu_usage_seconds_total"
    ]
    assert sample.labels == {"container": "c\\1", "namespace": "default", "pod": 'we"ird'}
