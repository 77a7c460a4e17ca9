"""NodeResourcesFit: requests against what is left, pod count, reasons and codes; LeastAllocated score."""

from __future__ import annotations

import pytest

from control.scheduler.framework import CycleState
from control.scheduler.plugins.node_resources_fit import NodeResourcesFit
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code
from tests.control.scheduler.support import node, node_info, pod, run_filter, run_score


def busy(cpu: str = "1", memory: str = "1Gi", *, pods: str = "110", count: int = 1, **extra: str):
    """A 2-CPU / 4Gi node holding ``count`` pods of ``cpu``/``memory`` each."""
    return node_info(
        node("n1", cpu="2", memory="4Gi", pods=pods, extra=extra),
        *(pod(f"old-{i}", cpu=cpu, memory=memory) for i in range(count)),
    )


@pytest.mark.parametrize(
    ("new", "node_info_", "reasons"),
    [
        (pod("p", cpu="1", memory="1Gi"), busy(), None),
        (pod("p", cpu="1001m"), busy(), ("Insufficient cpu",)),
        (pod("p", memory="3Gi"), busy(), None),
        (pod("p", memory="3073Mi"), busy(), ("Insufficient memory",)),
        (pod("p", cpu="2", memory="4Gi"), busy(), ("Insufficient cpu", "Insufficient memory")),
        (pod("p"), busy(pods="1"), ("Too many pods",)),
        (pod("p", cpu="5"), busy(pods="1"), ("Too many pods", "Insufficient cpu")),
        (pod("p"), busy(cpu="2", memory="4Gi"), None),  # best effort: only the pod count matters
        (pod("p", cpu="0"), busy(cpu="2"), None),
    ],
)
def test_filter(new, node_info_, reasons):
    assert run_filter(NodeResourcesFit(), new, nodes=[node_info_]) == {"n1": reasons}


def test_extended_and_ephemeral_resources():
    gpu_pod = pod("p")
    gpu_pod["spec"]["containers"][0]["resources"] = {
        "requests": {"example.com/gpu": "1", "ephemeral-storage": "2Gi"}
    }
    no_gpu = node_info(node("n1", extra={"ephemeral-storage": "1Gi"}))
    assert run_filter(NodeResourcesFit(), gpu_pod, nodes=[no_gpu]) == {
        "n1": ("Insufficient ephemeral-storage", "Insufficient example.com/gpu")
    }
    with_gpu = node_info(node("n1", extra={"ephemeral-storage": "10Gi", "example.com/gpu": "1"}))
    assert run_filter(NodeResourcesFit(), gpu_pod, nodes=[with_gpu]) == {"n1": None}


def verdict(new: dict, node_info_):
    return NodeResourcesFit().filter(CycleState(PodInfo(new), [node_info_]), node_info_)


def test_code_is_unresolvable_only_when_the_whole_node_is_too_small():
    assert verdict(pod("p", cpu="1500m"), busy()).code is Code.UNSCHEDULABLE
    too_big = verdict(pod("p", cpu="3", memory="1Gi"), busy())
    assert too_big.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert too_big.reasons == ("Insufficient cpu",)
    assert verdict(pod("p"), busy(pods="1")).code is Code.UNSCHEDULABLE


def test_least_allocated_score():
    empty = node_info(node("empty", cpu="4", memory="8Gi"))
    half = node_info(node("half", cpu="4", memory="8Gi"), pod("x", cpu="2", memory="4Gi"))
    tiny = node_info(node("tiny", cpu="1", memory="1Gi"))
    # 1 CPU / 2Gi more: empty (75+75)/2, half (25+25)/2, tiny: CPU full, memory over → 0
    assert run_score(NodeResourcesFit(), pod("p", cpu="1", memory="2Gi"), nodes=[empty, half, tiny]) == [
        75,
        25,
        0,
    ]


def test_least_allocated_counts_best_effort_pods_as_non_zero():
    crowded = node_info(node("crowded", cpu="1", memory="1Gi"), *(pod(f"be-{i}") for i in range(5)))
    quiet = node_info(node("quiet", cpu="1", memory="1Gi"))
    crowded_score, quiet_score = run_score(NodeResourcesFit(), pod("p"), nodes=[crowded, quiet])
    assert quiet_score > crowded_score
    assert run_score(NodeResourcesFit(), pod("p"), nodes=[node_info(node("zero", cpu="0", memory="0"))]) == [
        0
    ]
