"""NodeName: a pod naming a node in ``spec.nodeName`` fits only that node.

The scheduler never places a pod that already has a node name, so in kubelab this filter
matters when the framework evaluates a pod against nodes for other reasons (as upstream's
cluster-autoscaler simulations and DaemonSet checks do); it is kept for the same semantics.
"""

from __future__ import annotations

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState, FilterPlugin
from control.scheduler.status import Code, Status

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"

_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON,), NAME)


class NodeName(FilterPlugin):
    name = NAME

    def pre_filter(self, state: CycleState) -> bool:
        return bool(state.pod.node_name)

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        return None if node.name == state.pod.node_name else _STATUS
