"""NodeResourcesBalancedAllocation: prefer nodes whose CPU and memory would be used evenly.

Score, as upstream: with this pod added, the fraction of allocatable CPU and of memory
requested on the node (each capped at 1); ``(1 - |cpu - memory| / 2) * 100``. Exact requests
are used (not the non-zero defaults), and a pod requesting neither CPU nor memory is not
scored at all — otherwise every best-effort pod would prefer the same node (kubernetes#129138).
"""

from __future__ import annotations

from collections.abc import Sequence

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import MAX_NODE_SCORE, CycleState, ScorePlugin

NAME = "NodeResourcesBalancedAllocation"


class BalancedAllocation(ScorePlugin):
    name = NAME

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        requests = state.pod.requests
        return bool(requests.milli_cpu or requests.memory)

    def score(self, state: CycleState, node: NodeInfo) -> int:
        pod = state.pod
        fractions = [
            min((requested + wanted) / capacity, 1.0)
            for requested, wanted, capacity in (
                (node.requested.milli_cpu, pod.requests.milli_cpu, node.allocatable.milli_cpu),
                (node.requested.memory, pod.requests.memory, node.allocatable.memory),
            )
            if capacity
        ]
        deviation = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
        return int((1 - deviation) * MAX_NODE_SCORE)
