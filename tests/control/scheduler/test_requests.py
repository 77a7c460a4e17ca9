"""Pod requests (containers, init containers, sidecars, overhead), non-zero defaults, node allocatable."""

from __future__ import annotations

import pytest

from control.scheduler.requests import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    InvalidResourcesError,
    Resources,
    is_scalar_resource,
    node_allocatable,
    pod_non_zero_requests,
    pod_requests,
)


def container(cpu: str | None = None, memory: str | None = None, **extra: str) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None} | extra
    return {"name": "c", "resources": {"requests": requests}} if requests else {"name": "c"}


def sidecar(cpu: str, memory: str) -> dict:
    return {**container(cpu, memory), "restartPolicy": "Always"}


@pytest.mark.parametrize(
    ("spec", "cpu", "memory"),
    [
        ({"containers": [container("100m", "64Mi"), container("200m", "64Mi")]}, 300, 128 * 2**20),
        # an init container bigger than the sum wins
        ({"containers": [container("100m")], "initContainers": [container("1")]}, 1000, 0),
        # a smaller one does not add
        (
            {"containers": [container("500m")], "initContainers": [container("200m"), container("300m")]},
            500,
            0,
        ),
        # a sidecar runs alongside: added to the containers' sum, and to later init containers' needs
        (
            {"containers": [container("100m")], "initContainers": [sidecar("200m", "0"), container("500m")]},
            700,
            0,
        ),
        ({"containers": [container("100m")], "initContainers": [sidecar("200m", "1Mi")]}, 300, 2**20),
        ({"containers": [container("100m")], "overhead": {"cpu": "50m", "memory": "10Mi"}}, 150, 10 * 2**20),
        ({"containers": [container()]}, 0, 0),
        ({}, 0, 0),
    ],
)
def test_pod_requests(spec, cpu, memory):
    requests = pod_requests(spec)
    assert (requests.milli_cpu, requests.memory) == (cpu, memory)


def test_ephemeral_storage_and_scalar_resources_are_counted():
    spec = {
        "containers": [
            container(
                "1",
                **{
                    "ephemeral-storage": "1Gi",
                    "example.com/gpu": "2",
                    "hugepages-2Mi": "4Mi",
                    "storage": "9",
                },
            )
        ]
    }
    requests = pod_requests(spec)
    assert requests.ephemeral_storage == 2**30
    assert requests.scalars == {"example.com/gpu": 2, "hugepages-2Mi": 4 * 2**20}


def test_non_zero_requests_fill_in_missing_cpu_and_memory_only():
    assert pod_non_zero_requests({"containers": [container()]}) == (
        DEFAULT_MILLI_CPU_REQUEST,
        DEFAULT_MEMORY_REQUEST,
    )
    assert pod_non_zero_requests({"containers": [container(cpu="0")]}) == (0, DEFAULT_MEMORY_REQUEST)
    assert pod_non_zero_requests({"containers": [container("1", "1Gi"), container()]}) == (
        1000 + DEFAULT_MILLI_CPU_REQUEST,
        2**30 + DEFAULT_MEMORY_REQUEST,
    )


def test_bad_quantity_names_the_field():
    with pytest.raises(InvalidResourcesError, match=r"spec.initContainers\[0\].resources.requests\[cpu\]"):
        pod_requests({"containers": [], "initContainers": [container("lots")]})
    with pytest.raises(InvalidResourcesError, match="must be a map"):
        pod_requests({"containers": [{"name": "c", "resources": {"requests": ["1"]}}]})


def test_node_allocatable():
    resources, pods = node_allocatable({"allocatable": {"cpu": "3500m", "memory": "2Gi", "pods": "110"}})
    assert resources == Resources(milli_cpu=3500, memory=2**30 * 2)
    assert pods == 110
    assert node_allocatable({}) == (Resources(), 0)
    with pytest.raises(InvalidResourcesError, match=r"status.allocatable\[pods\]"):
        node_allocatable({"allocatable": {"pods": "many"}})


def test_resources_arithmetic():
    total = Resources(100, 10, 1, {"x/y": 1})
    total.add(Resources(50, 5, 0, {"x/y": 2, "a/b": 1}))
    assert total == Resources(150, 15, 1, {"x/y": 3, "a/b": 1})
    total.add(Resources(150, 15, 1, {"x/y": 3, "a/b": 1}), -1)
    assert total.is_zero()
    peak = Resources(100, 0, 0, {})
    peak.set_max(Resources(50, 7, 0, {"x/y": 1}))
    assert peak == Resources(100, 7, 0, {"x/y": 1})


@pytest.mark.parametrize(
    ("name", "scalar"),
    [
        ("example.com/gpu", True),
        ("hugepages-1Gi", True),
        ("kubernetes.io/batch-cpu", True),
        ("cpu", False),
        ("storage", False),
    ],
)
def test_scalar_resource_names(name, scalar):
    assert is_scalar_resource(name) is scalar
