"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that tolerate it.

The exception is upstream's: a pod tolerating the taint ``node.kubernetes.io/unschedulable``
with effect NoSchedule (DaemonSet pods get that toleration) may still go there.
"""

from __future__ import annotations

from control.scheduler.cache import NodeInfo
from control.scheduler.framework import CycleState, FilterPlugin
from control.scheduler.status import Code, Status
from control.scheduler.taints import NO_SCHEDULE, UNSCHEDULABLE, tolerated

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"

_TAINT = {"key": UNSCHEDULABLE, "effect": NO_SCHEDULE}
_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_UNSCHEDULABLE,), NAME)


class NodeUnschedulable(FilterPlugin):
    name = NAME

    def filter(self, state: CycleState, node: NodeInfo) -> Status | None:
        if node.unschedulable and not tolerated(state.pod.tolerations, _TAINT):
            return _STATUS
        return None
