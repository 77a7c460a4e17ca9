"""NodeAffinity: ``nodeSelector`` and required node affinity filter; preferred node affinity scores.

Filter (UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector"):
every ``nodeSelector`` pair must be a label of the node, and at least one term of
``requiredDuringSchedulingIgnoredDuringExecution`` must match (labels via ``matchExpressions``,
the node's name via ``matchFields`` on ``metadata.name``, as DaemonSet pods use).

Score: the sum of the weights of the preferred terms the node matches, scaled so the best node
gets 100.
"""

from __future__ import annotations

from collections.abc import Sequence

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState, FilterPlugin, ScorePlugin, default_normalize
from control.scheduler.podinfo import PodInfo
from control.scheduler.status import Code, Status

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"

_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_POD,), NAME)


def matches_required(pod: PodInfo, node: NodeInfo) -> bool:
    """Whether the node satisfies the pod's nodeSelector and required node affinity."""
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return False
    return pod.required_node_affinity is None or pod.required_node_affinity.matches(node.name, labels)


class NodeAffinity(FilterPlugin, ScorePlugin):
    name = NAME

    def pre_filter(self, state: CycleState) -> bool:
        return bool(state.pod.node_selector) or state.pod.required_node_affinity is not None

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        return None if matches_required(state.pod, node) else _STATUS

    def pre_score(self, state: CycleState, nodes: Sequence[NodeInfo]) -> bool:
        return bool(state.pod.preferred_node_affinity)

    def score(self, state: CycleState, node: NodeInfo) -> int:
        preferred = state.pod.preferred_node_affinity
        return sum(weight for weight, term in preferred if term.matches(node.name, node.labels))

    def normalize(self, state: CycleState, scores: list[int]) -> None:
        default_normalize(scores)
