"""NodeResourcesFit: the pod's requests must fit what the node has left; emptier nodes score higher.

Filter, as upstream's ``fitsRequest``: one more pod must not exceed ``allocatable.pods``
("Too many pods"); then every requested resource — CPU, memory, ephemeral storage, extended and
hugepages resources — must fit ``allocatable - requested`` of the pods already there (bound or
assumed): "Insufficient cpu", "Insufficient memory", ... Every shortfall is reported, so one node
can count towards several reasons. The code is UnschedulableAndUnresolvable when a request
exceeds the node's whole allocatable (no eviction could make room), else Unschedulable.

Score, the default ``LeastAllocated`` strategy over CPU and memory with weight 1 each:
``(allocatable - requested) * 100 / allocatable`` per resource, averaged, where requested
includes this pod and uses the *non-zero* requests (100m / 200Mi for a container that names
none), so best-effort pods spread too.
"""

from __future__ import annotations

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import MAX_NODE_SCORE, CycleState, FilterPlugin, ScorePlugin
from control.scheduler.podinfo import PodInfo
from control.scheduler.requests import CPU, EPHEMERAL_STORAGE, MEMORY
from control.scheduler.status import Code, Status

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"


def insufficient(pod: PodInfo, node: NodeInfo) -> list[tuple[str, bool]]:
    """``(reason, unresolvable)`` for every resource the node lacks for ``pod``."""
    shortfalls: list[tuple[str, bool]] = []
    if len(node.pods) + 1 > node.allowed_pods:
        shortfalls.append((TOO_MANY_PODS, False))
    wanted, allocatable, used = pod.requests, node.allocatable, node.requested
    if wanted.is_zero():
        return shortfalls
    for name, want, have, taken in (
        (CPU, wanted.milli_cpu, allocatable.milli_cpu, used.milli_cpu),
        (MEMORY, wanted.memory, allocatable.memory, used.memory),
        (EPHEMERAL_STORAGE, wanted.ephemeral_storage, allocatable.ephemeral_storage, used.ephemeral_storage),
    ):
        if want > 0 and want > have - taken:
            shortfalls.append((f"Insufficient {name}", want > have))
    for name, want in wanted.scalars.items():
        if want == 0:
            continue
        have = allocatable.scalars.get(name, 0)
        if want > have - used.scalars.get(name, 0):
            shortfalls.append((f"Insufficient {name}", want > have))
    return shortfalls


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


class NodeResourcesFit(FilterPlugin, ScorePlugin):
    name = NAME

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        shortfalls = insufficient(state.pod, node)
        if not shortfalls:
            return None
        code = (
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE
            if any(unresolvable for _, unresolvable in shortfalls)
            else Code.UNSCHEDULABLE
        )
        return Status(code, tuple(reason for reason, _ in shortfalls), NAME)

    def score(self, state: CycleState, node: NodeInfo) -> int:
        pod = state.pod
        total = weights = 0
        for requested, capacity in (
            (node.non_zero_cpu + pod.non_zero_cpu, node.allocatable.milli_cpu),
            (node.non_zero_memory + pod.non_zero_memory, node.allocatable.memory),
        ):
            if capacity == 0:
                continue
            total += least_requested(requested, capacity)
            weights += 1
        return total // weights if weights else 0
